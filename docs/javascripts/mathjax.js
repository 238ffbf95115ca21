// MathJax 3 configuration for pymdownx.arithmatex (generic mode): \( \) inline, \[ \] display.
// MathJax itself is served from assets/mathjax/ (copied at build time, see docs/hooks.py).
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"]],
    displayMath: [["\\[", "\\]"]],
    processEscapes: true,
    processEnvironments: true,
  },
  options: {
    ignoreHtmlClass: ".*|",
    processHtmlClass: "arithmatex",
  },
  loader: {paths: {mathjax: new URL("../assets/mathjax", document.currentScript.src).href}},
};

// Material's instant navigation swaps pages without reloading: typeset the new page.
if (typeof document$ !== "undefined") {
  document$.subscribe(() => {
    if (window.MathJax && MathJax.typesetPromise) {
      MathJax.startup.output.clearCache();
      MathJax.typesetClear();
      MathJax.texReset();
      MathJax.typesetPromise();
    }
  });
}
