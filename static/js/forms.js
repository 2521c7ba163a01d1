// A refused form answers with its error regions only, out of band, so that nothing typed while
// the request ran is replaced; this marks each field invalid, or valid again, to match them.
document.addEventListener("htmx:afterSettle", () => {
  for (const slot of document.querySelectorAll("[data-error-for]")) {
    const invalid = slot.textContent.trim() !== "";
    slot.closest(".field, fieldset")?.classList.toggle("field-invalid", invalid);
    const control = document.getElementById(slot.dataset.errorFor);
    if (control && invalid) control.setAttribute("aria-invalid", "true");
    else if (control) control.removeAttribute("aria-invalid");
  }
});
