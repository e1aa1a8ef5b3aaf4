// The status page: asks for the admin key (or takes it from the URL fragment, which is never
// sent to the server), then shows accounts and today's usage, refreshing every 5 seconds.
"use strict";
(function () {
  const STORE = "cursor-proxy-admin-key";
  const $ = (id) => document.getElementById(id);
  let key = "";
  let timer = null;

  function fromFragment() {
    const m = /(?:^|[#&])key=([^&]+)/.exec(location.hash);
    if (!m) return "";
    // Drop the key from the address bar so it is not bookmarked or shared.
    history.replaceState(null, "", location.pathname);
    return decodeURIComponent(m[1]);
  }

  function cell(row, text, cls) {
    const td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "" : String(text);
    if (cls) td.className = cls;
    row.appendChild(td);
  }

  async function api(path) {
    const r = await fetch("/admin/v1/" + path, { headers: { Authorization: "Bearer " + key } });
    const body = await r.json();
    if (!r.ok) throw new Error((body.error && body.error.message) || ("HTTP " + r.status));
    return body;
  }

  function renderAccounts(list) {
    const tbody = $("accounts").tBodies[0];
    tbody.replaceChildren();
    for (const a of list) {
      const tr = document.createElement("tr");
      tr.dataset.account = a.name;
      cell(tr, a.name);
      cell(tr, a.state, a.state);
      cell(tr, Math.ceil(a.cooldown_remaining_ms / 1000), "num");
      cell(tr, a.reason);
      cell(tr, a.successes, "num");
      cell(tr, a.failures, "num");
      tbody.appendChild(tr);
    }
  }

  function renderUsage(usage) {
    $("today").textContent = usage.today;
    const tbody = $("usage").tBodies[0];
    tbody.replaceChildren();
    for (const u of usage.rows.filter((r) => r.day === usage.today)) {
      const tr = document.createElement("tr");
      cell(tr, u.key);
      cell(tr, u.model);
      cell(tr, u.account);
      cell(tr, u.requests, "num");
      cell(tr, u.input_tokens, "num");
      cell(tr, u.output_tokens, "num");
      tbody.appendChild(tr);
    }
  }

  async function refresh() {
    try {
      const [accounts, usage] = await Promise.all([api("accounts"), api("usage")]);
      renderAccounts(accounts.accounts);
      renderUsage(usage);
      $("updated").textContent = new Date().toLocaleTimeString();
      $("error").textContent = "";
      $("view").hidden = false;
      $("login").hidden = true;
      document.body.dataset.loaded = "true";
    } catch (e) {
      $("error").textContent = "Cannot load the status: " + e.message;
      $("login").hidden = false;
    }
  }

  function start(k) {
    key = k;
    sessionStorage.setItem(STORE, key);
    if (timer) clearInterval(timer);
    refresh();
    timer = setInterval(refresh, 5000);
  }

  $("login").addEventListener("submit", (ev) => {
    ev.preventDefault();
    start($("key").value.trim());
  });

  const initial = fromFragment() || sessionStorage.getItem(STORE) || "";
  if (initial) start(initial); else $("login").hidden = false;
})();
