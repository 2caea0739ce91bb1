"use strict";
// The open-incidents board follows the server's change feed (Server-Sent Events) and reloads its rows; the
// NOBODY ACCEPTED banner and the page title count the unfilled rows the server sorted first.
document.addEventListener("DOMContentLoaded", function () {
  var board = document.querySelector("[data-live-rows]");
  if (!board) { return; }
  var alert = document.getElementById("unfilled-alert");
  var baseTitle = document.title;
  var showUnfilled = function () {
    var count = board.querySelectorAll('tr[data-stage="unfilled"]').length;
    document.title = count ? "(" + count + " unfilled) " + baseTitle : baseTitle;
    if (!alert) { return; }
    alert.setAttribute("data-count", String(count));
    alert.hidden = count === 0;
    alert.textContent = count ? "NOBODY ACCEPTED: " + count + " incident" + (count === 1 ? "" : "s") +
      " with nobody going." : "";
  };
  var missedAlert = document.getElementById("checkin-alert");
  var showMissed = function () {
    var count = board.querySelectorAll('tr[data-checkin="missed"]').length;
    if (!missedAlert) { return; }
    missedAlert.setAttribute("data-count", String(count));
    missedAlert.hidden = count === 0;
    missedAlert.textContent = count ? "CHECK-IN MISSED: " + count + " incident" + (count === 1 ? "" : "s") +
      " where a responder has not checked in." : "";
  };
  showUnfilled();
  showMissed();
  if (!window.EventSource) { return; }
  var source = new EventSource(board.getAttribute("data-events") || "/workspace/events");
  var refresh = function () {
    fetch(board.getAttribute("data-live-rows"), {credentials: "same-origin", cache: "no-store"})
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html === null) { return; }
        board.innerHTML = html;
        board.setAttribute("data-refreshed", String(Date.now()));
        showUnfilled();
        showMissed();
      });
  };
  source.addEventListener("change", refresh);
  source.addEventListener("open", function () { document.body.setAttribute("data-live", "connected"); });
});
