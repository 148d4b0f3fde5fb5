// yQuant dashboard: live fragments over Server-Sent Events, table sort/filter, the order form.
// Plain JavaScript, no build step, no inline handlers (the page's CSP forbids them).
(function () {
  "use strict";

  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var csrf = csrfMeta ? csrfMeta.getAttribute("content") : "";
  var sortState = {};  // table id -> {index, descending}

  // --- stale state ---------------------------------------------------------------------------
  // What keeps this page from being current, each a reason the banner names: the live stream is
  // down ("connection"), the dashboard cannot read Valkey ("valkey"), a refresh failed ("refresh").
  var problems = {};
  var currentSince = new Date();
  var leaving = false;  // a page being left closes its stream: that is no outage

  function clock(date) {  // in the viewer's zone, not the browser's
    var zone = document.body.getAttribute("data-tz") || undefined;
    try { return date.toLocaleTimeString("en-GB", { timeZone: zone }); }
    catch (error) { return date.toLocaleTimeString("en-GB"); }
  }

  function showStale() {
    var stale = Object.keys(problems).length > 0;
    document.body.classList.toggle("stale", stale);
    var status = document.getElementById("live-status");
    if (status) { status.classList.toggle("stale", stale); status.textContent = stale ? "stale" : "live"; }
    var banner = document.getElementById("stale-banner");
    if (!banner) { return; }
    banner.querySelectorAll("[data-reason]").forEach(function (line) {
      line.hidden = !problems[line.getAttribute("data-reason")];
    });
    var since = document.getElementById("stale-since");
    if (since) { since.textContent = clock(currentSince); }
    banner.hidden = !stale;
  }

  function markStale(reason) {
    if (leaving || problems[reason]) { return; }
    problems[reason] = true;
    showStale();
  }

  function markCurrent(reason) {
    if (!problems[reason]) { return false; }
    delete problems[reason];
    if (!Object.keys(problems).length) { currentSince = new Date(); }
    showStale();
    return true;
  }

  window.addEventListener("pagehide", function () { leaving = true; });
  window.addEventListener("beforeunload", function () { leaving = true; });
  window.addEventListener("pageshow", function () { leaving = false; });

  // --- live fragments ----------------------------------------------------------------------
  var pending = new Map();

  function refresh(section) {
    if (pending.get(section) === "running") { pending.set(section, "again"); return; }
    pending.set(section, "running");
    fetch(section.getAttribute("data-src"), { headers: { "X-Requested-With": "fetch" }, credentials: "same-origin" })
      .then(function (response) {
        if (response.status === 401) {
          window.location.href = "/login?next=" + encodeURIComponent(window.location.pathname + window.location.search);
          return null;
        }
        if (!response.ok) { markStale("refresh"); return null; }
        return response.text();
      })
      .then(function (html) {
        if (html !== null && html !== undefined) {
          markCurrent("refresh");
          keepingRevisions(section, function () { section.innerHTML = html; });
          enhance(section);
          document.dispatchEvent(new CustomEvent("yq:refreshed", { detail: section.id }));
        }
      })
      .catch(function () { markStale("refresh"); /* the next event or interval retries */ })
      .finally(function () {
        var again = pending.get(section) === "again";
        pending.delete(section);
        if (again) { schedule(section); }
      });
  }

  // A Revise form someone is typing into stays open, with what was typed, when the fragment
  // around it is rendered again (a fill elsewhere must not throw the half-typed price away).
  function keepingRevisions(section, replace) {
    var typed = {};
    section.querySelectorAll("details.revise[open]").forEach(function (details) {
      var row = details.closest("tr");
      if (!row) { return; }
      typed[row.getAttribute("data-client-order-id")] = Array.prototype.map.call(
        details.querySelectorAll("input:not([type=hidden])"), function (input) { return input.value; });
    });
    replace();
    Object.keys(typed).forEach(function (id) {
      var row = section.querySelector('tr[data-client-order-id="' + CSS.escape(id) + '"]');
      var details = row && row.querySelector("details.revise");
      if (!details) { return; }  // no longer revisable (filled, cancelled)
      details.open = true;
      var inputs = details.querySelectorAll("input:not([type=hidden])");
      typed[id].forEach(function (value, index) { if (inputs[index]) { inputs[index].value = value; } });
    });
  }

  var timers = new Map();
  function schedule(section) {
    if (timers.has(section)) { return; }
    timers.set(section, window.setTimeout(function () { timers.delete(section); refresh(section); }, 200));
  }

  // The server sends a status event at least every 15 s: this long without one, the stream is dead
  // even if no error said so (a phone that changed networks), and it is opened again.
  var SILENCE_MS = 50000;

  // Every signed-in page (the ones with a stale banner) follows the stream, also those without a
  // live fragment (the order form, schedules, performance): what they show is as old as their
  // load, and a trader must see when the system behind them is down.
  function connectLive() {
    var sections = Array.prototype.slice.call(document.querySelectorAll("[data-live]"));
    var status = document.getElementById("live-status");
    if (!document.getElementById("stale-banner") || !window.EventSource) {
      if (status) { status.hidden = true; }
      return;
    }
    var position = document.body.getAttribute("data-cursor") || "";
    var source = null, watchdog = null, retryMs = 2000;

    function refreshAll() { sections.forEach(schedule); }
    function heard() {
      window.clearTimeout(watchdog);
      watchdog = window.setTimeout(function () { markStale("connection"); open(); }, SILENCE_MS);
    }
    function open() {
      if (source) { source.close(); }
      source = new EventSource("/events" + (position ? "?from=" + encodeURIComponent(position) : ""));
      source.onopen = function () {
        retryMs = 2000;
        heard();
        if (status) { status.classList.add("on"); }
        if (markCurrent("connection")) { refreshAll(); }
      };
      source.onerror = function () {
        if (status) { status.classList.remove("on"); }
        markStale("connection");
        // The browser retries a dropped stream by itself, but not one the server refused (a 5xx
        // while Valkey is down, say): that one is opened again here, backing off to 30 s.
        if (source.readyState === EventSource.CLOSED) {
          window.clearTimeout(watchdog);
          window.setTimeout(open, retryMs);
          retryMs = Math.min(retryMs * 2, 30000);
        }
      };
      source.onmessage = function (message) {
        heard();
        if (message.lastEventId) { position = message.lastEventId; }
        var event;
        try { event = JSON.parse(message.data); } catch (error) { return; }
        sections.forEach(function (section) {
          if (section.getAttribute("data-live").split(" ").indexOf(event.stream) >= 0) { schedule(section); }
        });
        document.dispatchEvent(new CustomEvent("yq:event", { detail: event }));
      };
      source.addEventListener("status", function (message) {
        heard();
        var state;
        try { state = JSON.parse(message.data); } catch (error) { return; }
        if (state.valkey === "down") { markStale("valkey"); }
        else if (markCurrent("valkey")) { refreshAll(); }
      });
      source.addEventListener("reload", function () { window.location.reload(); });
    }
    open();
  }

  function startIntervals() {
    document.querySelectorAll("[data-refresh]").forEach(function (section) {
      var seconds = Math.max(Number(section.getAttribute("data-refresh")) || 10, 2);
      window.setInterval(function () { if (!document.hidden) { refresh(section); } }, seconds * 1000);
    });
  }

  // --- tables --------------------------------------------------------------------------------
  function cellValue(row, index, numeric) {
    var cell = row.cells[index];
    if (!cell) { return numeric ? 0 : ""; }
    var raw = cell.hasAttribute("data-value") ? cell.getAttribute("data-value") : cell.textContent.trim();
    if (!numeric) { return raw.toLowerCase(); }
    var number = parseFloat(String(raw).replace(/[^0-9.+-]/g, ""));
    return isNaN(number) ? 0 : number;
  }

  function sortTable(table, index, descending) {
    var header = table.tHead.rows[0].cells[index];
    var numeric = header.getAttribute("data-sort") === "num";
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows).filter(function (r) { return r.cells.length > 1; });
    rows.sort(function (a, b) {
      var x = cellValue(a, index, numeric), y = cellValue(b, index, numeric);
      var order = x < y ? -1 : x > y ? 1 : 0;
      return descending ? -order : order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (cell, i) {
      if (i === index) { cell.setAttribute("aria-sort", descending ? "descending" : "ascending"); }
      else { cell.removeAttribute("aria-sort"); }
    });
  }

  function enhanceTables(root) {
    root.querySelectorAll("table[data-sortable]").forEach(function (table) {
      Array.prototype.forEach.call(table.tHead.rows[0].cells, function (cell, index) {
        if (!cell.hasAttribute("data-sort")) { return; }
        cell.tabIndex = 0;
        cell.addEventListener("click", function () {
          var current = sortState[table.id];
          var descending = current && current.index === index ? !current.descending : false;
          sortState[table.id] = { index: index, descending: descending };
          sortTable(table, index, descending);
        });
      });
      var state = sortState[table.id];
      if (state) { sortTable(table, state.index, state.descending); }
    });
    document.querySelectorAll("input[data-filter]").forEach(applyFilter);
  }

  function applyFilter(input) {
    var table = document.getElementById(input.getAttribute("data-filter"));
    if (!table) { return; }
    var needle = input.value.trim().toLowerCase();
    Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
      row.hidden = needle !== "" && row.textContent.toLowerCase().indexOf(needle) < 0;
    });
  }

  function enhance(root) {
    enhanceTables(root);
    root.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.getAttribute("data-confirm"))) { event.preventDefault(); }
      });
    });
  }

  // --- the order form -------------------------------------------------------------------------
  function orderForm() {
    var form = document.getElementById("order-form");
    if (!form) { return; }
    var market = form.querySelector("#market"), ticker = form.querySelector("#ticker");
    var sizing = form.querySelector("#sizing"), value = form.querySelector("#value");
    var orderType = form.querySelector("#order-type"), limit = form.querySelector("#limit-price");
    var quoteLine = document.getElementById("quote"), estimate = document.getElementById("estimate");
    var list = document.getElementById("ticker-list");
    var lastPrice = null, quoteTimer = null, listTimer = null;

    function currency() { return market.value === "KRX" ? "KRW" : "USD"; }
    function format(amount) {  // as the server does: KRW without decimals, USD with two
      var krw = currency() === "KRW", digits = krw ? 0 : 2;
      var text = Math.abs(amount).toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
      return (amount < 0 ? "-" : "") + (krw ? "₩" : "$") + text;
    }
    function update() {
      document.getElementById("value-label").textContent = sizing.value === "amount" ? "Amount (" + currency() + ")" : "Shares";
      limit.disabled = orderType.value !== "limit";
      var price = orderType.value === "limit" && parseFloat(limit.value) > 0 ? parseFloat(limit.value) : lastPrice;
      var entered = parseFloat(value.value);
      if (!price || !(entered > 0)) { estimate.textContent = ""; return; }
      if (sizing.value === "amount") {
        var shares = Math.floor(entered / price);
        estimate.textContent = "≈ " + shares + " share(s) at " + format(price) + " = " + format(shares * price);
      } else {
        estimate.textContent = "≈ " + format(entered * price);
      }
    }
    function fetchQuote() {
      var symbol = ticker.value.trim().toUpperCase();
      if (!symbol) { quoteLine.textContent = "Enter a ticker for a live quote."; lastPrice = null; update(); return; }
      quoteLine.textContent = "Fetching a quote…";
      var url = "/api/quote?market=" + encodeURIComponent(market.value) + "&ticker=" + encodeURIComponent(symbol);
      fetch(url, { headers: { "X-Requested-With": "fetch" }, credentials: "same-origin" })
        .then(function (r) { return r.json().then(function (body) { return { ok: r.ok, body: body }; }); })
        .then(function (result) {
          if (!result.ok || !result.body.price) {
            quoteLine.textContent = result.body.error || "No quote.";
            lastPrice = null; update(); return;
          }
          lastPrice = parseFloat(result.body.price);
          quoteLine.textContent = symbol + " " + format(lastPrice) + " at " + clock(new Date(result.body.as_of));
          update();
        })
        .catch(function () { quoteLine.textContent = "No quote."; });
    }
    function suggest() {
      var query = ticker.value.trim();
      fetch("/api/tickers?q=" + encodeURIComponent(query), { headers: { "X-Requested-With": "fetch" }, credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : []; })
        .then(function (items) {
          list.textContent = "";
          items.forEach(function (item) {
            var option = document.createElement("option");
            option.value = item.ticker;
            option.label = item.market + (item.name ? " · " + item.name : "");
            list.appendChild(option);
          });
        })
        .catch(function () { /* suggestions are optional */ });
    }
    ticker.addEventListener("input", function () {
      window.clearTimeout(quoteTimer); window.clearTimeout(listTimer);
      quoteTimer = window.setTimeout(fetchQuote, 500);
      listTimer = window.setTimeout(suggest, 200);
    });
    [market, sizing, orderType].forEach(function (el) { el.addEventListener("change", function () { update(); if (el === market) { fetchQuote(); } }); });
    [value, limit].forEach(function (el) { el.addEventListener("input", update); });
    update();
    suggest();
    if (ticker.value) { fetchQuote(); }
  }

  document.addEventListener("DOMContentLoaded", function () {
    var current = document.querySelector(".tabs [aria-current]");
    if (current && current.scrollIntoView) { current.scrollIntoView({ block: "nearest", inline: "center" }); }
    document.querySelectorAll("input[data-filter]").forEach(function (input) {
      input.addEventListener("input", function () { applyFilter(input); });
    });
    enhance(document);
    connectLive();
    startIntervals();
    orderForm();
  });

  window.yquant = { csrf: csrf, refresh: refresh };
})();
