"use strict";
// The open-incidents board follows the server's change feed (Server-Sent Events) and reloads its rows.
document.addEventListener("DOMContentLoaded", function () {
  var board = document.querySelector("[data-live-rows]");
  if (!board || !window.EventSource) { return; }
  var source = new EventSource(board.getAttribute("data-events") || "/workspace/events");
  var refresh = function () {
    fetch(board.getAttribute("data-live-rows"), {credentials: "same-origin", cache: "no-store"})
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html !== null) { board.innerHTML = html; board.setAttribute("data-refreshed", String(Date.now())); }
      });
  };
  source.addEventListener("change", refresh);
  source.addEventListener("open", function () { document.body.setAttribute("data-live", "connected"); });
});
