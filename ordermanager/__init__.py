"""Signal to order: mapping, sizing, pre-trade risk, trading state, schedules, exits."""
