// The live page: the verdict stream (server-sent events from /live/events)
// is prepended to #stream as verdicts arrive, and the posture summary is
// re-read from /live/posture after each one, the trend from /live/trend. No reload, no external code.
(function () {
  "use strict";
  var stream = document.getElementById("stream");
  var empty = document.getElementById("stream-empty");
  var conn = document.getElementById("conn");
  var posture = document.getElementById("posture-body");
  if (!stream) return;
  var last = stream.getAttribute("data-after") || "0";
  var maxItems = 100;

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }
  function fmt(t) {
    if (!t) return "–";
    var d = new Date(t);
    if (isNaN(d.getTime())) return t;
    return d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
  }
  function setConn(state, text) {
    if (!conn) return;
    conn.setAttribute("data-state", state);
    conn.textContent = text;
  }

  function render(seq, v) {
    var li = el("li", "verdict st-" + v.status);
    li.setAttribute("data-seq", seq);
    li.setAttribute("data-change", v.change);
    li.appendChild(el("span", "badge " + v.status, v.status));
    li.appendChild(document.createTextNode(" "));
    li.appendChild(el("time", null, fmt(v.evaluated_at)));
    li.appendChild(document.createTextNode(" "));
    var a = el("a", null, v.repository || v.change);
    a.href = "/live/changes/" + v.change;
    li.appendChild(a);
    li.appendChild(document.createTextNode(" "));
    li.appendChild(el("span", "title", v.title || ""));
    li.appendChild(document.createTextNode(" "));
    li.appendChild(el("span", "where", (v.environments || []).join(", ") + " " + (v.services || []).join(", ")));
    li.appendChild(document.createTextNode(" "));
    li.appendChild(el("span", "changed", (v.changed || []).join(" ")));
    var failing = (v.results || []).filter(function (r) { return r.status === "fail"; });
    if (failing.length) {
      var ul = el("ul", "reasons");
      failing.forEach(function (r) {
        var item = el("li");
        item.appendChild(el("b", null, r.control && r.control.id));
        item.appendChild(document.createTextNode(" " + ((r.reasons || [])[0] || "")));
        ul.appendChild(item);
      });
      li.appendChild(ul);
    }
    (v.late || []).forEach(function (n) { li.appendChild(renderLate(n)); });
    return li;
  }

  // Late evidence noted beside a decided verdict (which stands): which
  // controls, decided and late status, how many events, when.
  function renderLate(n) {
    var div = el("div", "late");
    div.setAttribute("data-deployment", n.deployment_key);
    div.appendChild(document.createTextNode("late evidence for the " + n.environment + " " + n.service +
      " deployment's " + n.verdict + " verdict (it stands): "));
    div.appendChild(el("span", "late-controls", (n.controls || []).map(function (c) {
      return c.control + " " + c.decided + "\u2192" + c.late;
    }).join(", ")));
    div.appendChild(document.createTextNode(", "));
    div.appendChild(el("span", "late-events", String((n.events || []).length)));
    div.appendChild(document.createTextNode(" event(s) arrived after " + fmt(n.arrived_by) + ", noted " + fmt(n.noted_at)));
    return div;
  }

  var refreshTimer = null;
  function refreshPosture() {
    if (!posture || refreshTimer) return;
    refreshTimer = setTimeout(function () {
      refreshTimer = null;
      fetch("/live/posture", { credentials: "same-origin", cache: "no-store" })
        .then(function (r) { if (!r.ok) throw new Error(r.status); return r.text(); })
        .then(function (html) {
          var tpl = document.createElement("template");
          tpl.innerHTML = html.trim();
          var fresh = tpl.content.getElementById("posture-body");
          if (fresh) { posture.replaceWith(fresh); posture = fresh; }
        })
        .catch(function () { /* kept as is; the next verdict tries again */ });
      var trend = document.getElementById("trend-body");
      if (!trend) return;
      fetch("/live/trend?range=" + encodeURIComponent(trend.dataset.range || "30d"), { credentials: "same-origin", cache: "no-store" })
        .then(function (r) { if (!r.ok) throw new Error(r.status); return r.text(); })
        .then(function (html) {
          var tpl = document.createElement("template");
          tpl.innerHTML = html.trim();
          var fresh = tpl.content.getElementById("trend-body");
          var now = document.getElementById("trend-body");
          if (fresh && now) now.replaceWith(fresh);
        })
        .catch(function () { /* kept as is; the next verdict tries again */ });
    }, 150);
  }

  var es = null, retry = null;
  function connect() {
    if (es) es.close();
    es = new EventSource("/live/events?after=" + encodeURIComponent(last));
    es.onopen = function () { setConn("open", "live"); };
    es.addEventListener("verdict", function (ev) {
      var v;
      try { v = JSON.parse(ev.data); } catch (e) { return; }
      last = ev.lastEventId || last;
      if (stream.querySelector('[data-seq="' + last + '"]')) return;
      stream.insertBefore(render(last, v), stream.firstChild);
      while (stream.children.length > maxItems) stream.removeChild(stream.lastChild);
      if (empty) empty.hidden = true;
      refreshPosture();
    });
    es.onerror = function () {
      if (es.readyState === EventSource.CLOSED) {
        setConn("closed", "disconnected, retrying…");
        clearTimeout(retry);
        retry = setTimeout(connect, 3000);
      } else {
        setConn("reconnecting", "reconnecting…");
      }
    };
  }
  connect();
})();
