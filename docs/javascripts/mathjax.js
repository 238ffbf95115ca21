// MathJax 3 configuration. MathJax itself is served from assets/mathjax/ (copied at build time,
// see docs/hooks.py), so math renders without network access.
//
// Ordinary pages: pymdownx.arithmatex (generic mode) wraps math in `.arithmatex` elements with
// \( \) and \[ \] delimiters, and only those elements are typeset. Notebook pages (rendered by
// nbconvert) keep Jupyter's $ and $$ delimiters inside plain paragraphs, so there MathJax scans
// the page (it never looks inside code and pre elements).
const notebookPage = document.querySelector(".jupyter-wrapper, .jp-Notebook") !== null;

window.MathJax = {
  tex: {
    inlineMath: notebookPage ? [["\\(", "\\)"], ["$", "$"]] : [["\\(", "\\)"]],
    displayMath: notebookPage ? [["\\[", "\\]"], ["$$", "$$"]] : [["\\[", "\\]"]],
    processEscapes: true,
    processEnvironments: true,
  },
  options: notebookPage ? {} : {ignoreHtmlClass: ".*|", processHtmlClass: "arithmatex"},
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
