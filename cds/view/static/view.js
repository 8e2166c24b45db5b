// Card view: Accept shows the FHIR resource a suggestion would create, Dismiss sends an
// override reason; both post CDS Hooks feedback to the service, as an EHR would.
"use strict";

function feedbackUrl() {
  return document.body.dataset.feedbackUrl;
}

async function sendFeedback(card, item) {
  const status = card.querySelector(".card__status");
  item.card = card.dataset.cardUuid;
  item.outcomeTimestamp = new Date().toISOString();
  try {
    const reply = await fetch(feedbackUrl(), {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ feedback: [item] }),
    });
    const body = await reply.json().catch(() => ({}));
    if (!reply.ok) {
      throw new Error(body.error || `HTTP ${reply.status}`);
    }
    status.classList.remove("is-error");
    return true;
  } catch (err) {
    status.classList.add("is-error");
    status.textContent = `Feedback not stored: ${err.message}`;
    return false;
  }
}

document.addEventListener("click", async (event) => {
  const button = event.target.closest(".button--accept");
  if (!button) return;
  const card = button.closest(".card");
  const shown = document.getElementById(button.getAttribute("aria-controls"));
  shown.hidden = false;
  button.disabled = true;
  button.setAttribute("aria-expanded", "true");
  if (!card.dataset.cardUuid || !button.dataset.suggestionUuid) return;
  const ok = await sendFeedback(card, {
    outcome: "accepted",
    acceptedSuggestions: [{ id: button.dataset.suggestionUuid }],
  });
  if (ok) {
    button.textContent = button.textContent.replace(/^Accept:/, "Accepted:");
    card.querySelector(".card__status").textContent =
      "Accepted: feedback sent to the service. The resource below is what the EHR would create.";
  }
});

document.addEventListener("submit", async (event) => {
  const form = event.target.closest("form.dismiss");
  if (!form) return;
  event.preventDefault();
  const card = form.closest(".card");
  const select = form.elements.reason;
  const option = select.selectedOptions[0];
  const item = { outcome: "overridden" };
  const comment = form.elements.comment.value.trim();
  if (select.value || comment) {
    item.overrideReason = {};
    if (select.value) {
      item.overrideReason.reason = {
        system: option.dataset.system, code: select.value, display: option.textContent.trim(),
      };
    }
    if (comment) item.overrideReason.userComment = comment;
  }
  const ok = await sendFeedback(card, item);
  if (ok) {
    card.classList.add("is-dismissed");
    form.querySelectorAll("select, input, button").forEach((el) => { el.disabled = true; });
    card.querySelector(".card__status").textContent =
      `Dismissed${select.value ? ` (${option.textContent.trim()})` : ""}: feedback sent to the service.`;
  }
});
