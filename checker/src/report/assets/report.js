// Counterexample hover: show the model state before and after the hovered operation.
(function () {
  "use strict";
  function text(el, s) { el.textContent = s; return el; }
  document.querySelectorAll(".cx-view").forEach(function (view) {
    var panel = view.querySelector(".cx-detail");
    if (!panel) { return; }
    view.querySelectorAll(".cx-op").forEach(function (g) {
      g.addEventListener("mouseenter", function () {
        g.classList.add("hover");
        panel.replaceChildren();
        var rows = [["op", g.dataset.op], ["before", g.dataset.before], ["after", g.dataset.after]];
        rows.forEach(function (r) {
          var line = document.createElement("div");
          line.appendChild(text(document.createElement("b"), r[0]));
          line.appendChild(text(document.createElement("code"), r[1] || ""));
          panel.appendChild(line);
        });
      });
      g.addEventListener("mouseleave", function () { g.classList.remove("hover"); });
    });
  });
  // Copy the replay command.
  document.querySelectorAll("button.copy").forEach(function (b) {
    b.addEventListener("click", function () {
      var cmd = b.dataset.copy || "";
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(cmd).then(function () { b.textContent = "copied"; }, function () { b.textContent = "copy failed"; });
      } else {
        var range = document.createRange();
        var code = b.previousElementSibling;
        if (code) { range.selectNodeContents(code); var sel = window.getSelection(); sel.removeAllRanges(); sel.addRange(range); b.textContent = "selected"; }
      }
    });
  });
})();
