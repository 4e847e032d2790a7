// Lets the Jupyter widgets manager run from the site's own files (book/_ext/offline_book.py).
// 1. RequireJS resolves the manager's modules, fonts included, under _static/html-manager
//    rather than relative to the page.
(function () {
  const here = document.currentScript.src;
  const staticFolder = here.slice(0, here.lastIndexOf("/") + 1);
  window.requirejs.config({
    paths: { "@jupyter-widgets/html-manager/dist": staticFolder + "html-manager" },
  });
})();
// 2. The widgets typeset their labels with MathJax 2's MathJax.Hub.Queue; the book loads
//    MathJax 3, so once it is there, answer that call with MathJax 3's typesetPromise.
document.addEventListener("DOMContentLoaded", function () {
  const mathjax = window.MathJax;
  if (!mathjax || mathjax.Hub || !mathjax.startup) return;
  mathjax.Hub = {
    Queue: function (...jobs) {
      for (const job of jobs) {
        if (Array.isArray(job) && job[0] === "Typeset") {
          mathjax.startup.promise.then(() => mathjax.typesetPromise([job[2]]));
        }
      }
    },
  };
});
