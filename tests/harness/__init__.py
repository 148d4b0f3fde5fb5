"""What the tests and the benchmark use to run the system, never shipped: the whole system as
``yquant up`` starts it (``devsystem``) and a clock that moves only when told (``clock``)."""
