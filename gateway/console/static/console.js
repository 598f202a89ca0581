// memrelay console: small progressive enhancements; every page works without this file.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    // "select all" checkbox for a column of checkboxes named data-target
    document.querySelectorAll("input.js-select-all").forEach(function (box) {
      box.addEventListener("change", function () {
        var form = box.closest("form");
        form.querySelectorAll('input[type=checkbox][name="' + box.dataset.target + '"]').forEach(function (c) {
          c.checked = box.checked;
        });
      });
    });
    // confirmation before destructive actions
    document.querySelectorAll("form.js-confirm").forEach(function (form) {
      form.addEventListener("submit", function (ev) {
        if (!window.confirm(form.dataset.confirm || "Are you sure?")) { ev.preventDefault(); }
      });
    });
    // copy a code element's text to the clipboard
    document.querySelectorAll("button.js-copy").forEach(function (btn) {
      btn.addEventListener("click", function () {
        var el = document.getElementById(btn.dataset.copy);
        if (!el) { return; }
        var text = el.textContent.trim();
        var done = function () { btn.textContent = "Copied"; setTimeout(function () { btn.textContent = "Copy URL"; }, 2000); };
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(text).then(done, function () { selectText(el); });
        } else { selectText(el); btn.textContent = "Selected: press Ctrl+C"; }
      });
    });
    // live event list: reload every 10 s while ticked (remembered), paused while any row is selected
    document.querySelectorAll(".js-only").forEach(function (el) { el.hidden = false; });
    var live = document.querySelector("input.js-live");
    if (live) {
      live.checked = window.localStorage.getItem("memrelay.console.live") === "1";
      live.addEventListener("change", function () {
        window.localStorage.setItem("memrelay.console.live", live.checked ? "1" : "0");
      });
      setInterval(function () {
        var a = document.activeElement;
        var typing = a && ((a.tagName === "INPUT" && a.type !== "checkbox") || a.tagName === "SELECT" || a.tagName === "TEXTAREA");
        var busy = document.querySelector('input[name="event_id"]:checked') || typing;
        if (live.checked && !busy) { window.location.reload(); }
      }, 10000);
    }
    // move focus to the first flash message so screen readers and keyboard users land on the outcome
    var flash = document.querySelector("main .flash");
    if (flash) { flash.setAttribute("tabindex", "-1"); }
  });
  function selectText(el) {
    var range = document.createRange();
    range.selectNodeContents(el);
    var sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
  }
})();
