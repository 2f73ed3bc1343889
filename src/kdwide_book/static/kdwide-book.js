/* Fixes for the theme's own controls, on every page (kdwide_book.readers serves this file).
 *
 * axe-core's label-content-name-mismatch (WCAG 2.5.3, "label in name"): the theme's search buttons show "Search
 * Ctrl+K" but are named "Search" by aria-label, so a speech-input user saying what they see ("click Search Ctrl K")
 * misses; the colour-mode button holds three icon glyphs (its name is "Color mode"). The accessible name becomes the
 * visible text, and the icons, which are decoration, are hidden from assistive technology.
 */
(function () {
  "use strict";

  function fix() {
    document.querySelectorAll("button i.fa-solid, button i.fa-brands, button i.fas, button i.fab").forEach(function (icon) {
      icon.setAttribute("aria-hidden", "true");
    });
    document.querySelectorAll("button.search-button__button[aria-label]").forEach(function (button) {
      var text = button.innerText.replace(/\s+/g, " ").trim();
      if (text) { button.setAttribute("aria-label", text); }
    });
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", fix); } else { fix(); }
})();
