/* Fixes for the theme's own controls, on every page (kdwide_book.readers serves this file).
 *
 * axe-core's label-content-name-mismatch (WCAG 2.5.3, "label in name"): the theme's search buttons show "Search
 * Ctrl+K" but are named "Search" by aria-label, so a speech-input user saying what they see ("click Search Ctrl K")
 * misses; the colour-mode button's icons carry titles ("Light", "Dark") that count as its text. The search buttons'
 * accessible name becomes their visible text, and the icons, which are decoration, lose their titles.
 */
(function () {
  "use strict";

  function quietIcons(button) {
    // Font Awesome turns each <i> icon into an <svg aria-hidden="true"> holding a <title> ("Light", "Dark", ...);
    // axe-core counts that title as the button's visible text. The icons are decoration: the titles go.
    button.querySelectorAll("svg[aria-hidden='true'] title").forEach(function (title) { title.remove(); });
    button.querySelectorAll("i").forEach(function (icon) { icon.setAttribute("aria-hidden", "true"); });
  }

  function fix() {
    document.querySelectorAll("button").forEach(function (button) {
      quietIcons(button);
      new MutationObserver(function () { quietIcons(button); }).observe(button, {childList: true, subtree: true});
    });
    document.querySelectorAll("button.search-button__button[aria-label]").forEach(function (button) {
      var text = button.innerText.replace(/\s+/g, " ").trim();
      if (text) { button.setAttribute("aria-label", text); }
    });
  }

  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", fix); } else { fix(); }
})();
