// The Wells DVT app, after the SMART EHR launch: read the chart with the service's prefetch
// templates, let the service judge which criteria it answers (same rules as the hook), ask
// the clinician only the unknown ones, compute the two-level Wells score and the NICE NG158
// next step from the content the service serves, and write the answers back to the EHR as a
// QuestionnaireResponse that the next hook call reads.
"use strict";

const APP = "wells-dvt";
const USER = /(Practitioner|PractitionerRole|Patient|RelatedPerson)\/[A-Za-z0-9\-.]+$/;
const $ = (id) => document.getElementById(id);

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => (
    { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

function fill(template, fields, escape) {
  return template.replace(/\{(\w+)\}/g, (all, name) => (
    name in fields ? (escape ? escapeHtml(fields[name]) : String(fields[name])) : all));
}

function fmt(n) {
  return Number.isInteger(n) ? String(n) : String(Math.round(n * 10) / 10);
}

function signed(n) {
  return n > 0 ? `+${fmt(n)}` : fmt(n);
}

function searchset(resources) {
  return { resourceType: "Bundle", type: "searchset", total: resources.length,
           entry: resources.map((resource) => ({ resource })) };
}

// Each prefetch template read with the app's token; a read that fails is left out, which the
// service treats as unknown (or refuses, for the data it requires), never as negative.
async function readChart(client, config) {
  const prefetch = {};
  const unread = [];
  for (const [key, template] of Object.entries(config.prefetch)) {
    const query = template.replaceAll("{{context.patientId}}", client.patient.id);
    try {
      prefetch[key] = key === "patient"
        ? await client.request(query)
        : searchset(await client.request(query, { pageLimit: 0, flat: true }));
    } catch (err) {
      if (config.required.includes(key)) {
        throw new Error(`could not read ${key} from the EHR: ${err.message}`);
      }
      unread.push(key);
    }
  }
  return { prefetch, unread };
}

function patientLine(patient) {
  const name = (patient.name || [])[0] || {};
  const text = name.text || [...(name.given || []), name.family || ""].join(" ").trim();
  return [text || "Unnamed patient", patient.gender, patient.birthDate && `born ${patient.birthDate}`]
    .filter(Boolean).join(", ");
}

// The score as the service computes it (cds/reasoning/scores.py): documented points, and the
// range the unknown criteria allow; a judgement that could only lower it is stated, not ranged.
function compute(data, answers) {
  let points = 0;
  const unknown = [];
  const pending = [];
  for (const c of data.criteria) {
    let truth = data.chart[c.id].truth;
    if (truth === "unknown" && c.id in answers) truth = answers[c.id] ? "met" : "not met";
    if (truth === "met") points += c.points;
    else if (truth === "unknown") (c.judgement && c.points < 0 ? pending : unknown).push(c);
  }
  const low = points + unknown.filter((c) => c.points < 0).reduce((s, c) => s + c.points, 0);
  const high = points + unknown.filter((c) => c.points > 0).reduce((s, c) => s + c.points, 0);
  const band = data.score.bands.find((b) => (b.min == null || low >= b.min)
                                          && (b.max == null || high <= b.max)) || null;
  let wells;
  if (band && !unknown.length) wells = `${fmt(points)} (${band.label})`;
  else if (band) wells = `${band.label}: documented ${fmt(points)}, between ${fmt(low)} and ${fmt(high)} with ${unknown.length} criteria unknown`;
  else wells = `documented ${fmt(points)}; between ${fmt(low)} and ${fmt(high)} with ${unknown.length} criteria unknown`;
  const bandId = data.diagnosed ? "diagnosed" : (band ? band.id : "indeterminate");
  const step = data.steps.find((s) => s.band === bandId
                                     && (s.ddimer === data.ddimer.state || s.ddimer === "any"));
  const fields = {
    score: unknown.length ? `at least ${fmt(low)}` : fmt(points),
    points: fmt(points), unknown: unknown.length, wells, ddimer: data.ddimer.text,
  };
  return { points, low, high, band, unknown, pending, step, fields, complete: !unknown.length };
}

function showKnown(data) {
  const list = $("known-list");
  list.replaceChildren();
  for (const c of data.criteria) {
    const r = data.chart[c.id];
    if (r.truth === "unknown") continue;
    const li = document.createElement("li");
    li.dataset.criterion = c.id;
    const mark = r.truth === "met" ? "✔ Yes" : "✘ No";
    const who = r.by === "clinician" ? " (an earlier answer)" : "";
    li.innerHTML = `<span class="truth truth--${r.truth.replace(" ", "-")}">${mark}</span>`
      + `${escapeHtml(c.label)} (${signed(c.points)})`
      + `<span class="evidence">${escapeHtml(r.evidence.join("; ") || r.reason)}${who}</span>`;
    list.append(li);
  }
  $("known").hidden = !list.children.length;
}

function showQuestions(data, answers, onChange) {
  const box = $("questions");
  box.replaceChildren();
  for (const c of data.criteria) {
    if (data.chart[c.id].truth !== "unknown") continue;
    const set = document.createElement("fieldset");
    set.dataset.criterion = c.id;
    set.innerHTML = `<legend>${escapeHtml(c.ask || c.label)}</legend>`
      + `<span class="criterion-label">${escapeHtml(c.label)} (${signed(c.points)} if yes)</span>`
      + `<label><input type="radio" name="${c.id}" value="yes"> Yes</label>`
      + `<label><input type="radio" name="${c.id}" value="no"> No</label>`;
    set.addEventListener("change", (event) => {
      answers[c.id] = event.target.value === "yes";
      onChange();
    });
    box.append(set);
  }
  if (!box.children.length) {
    box.innerHTML = "<p>The chart answers every criterion: nothing to ask.</p>";
  }
}

function showResult(data, answers) {
  const r = compute(data, answers);
  $("score").textContent = r.complete
    ? `Wells score ${r.fields.wells}`
    : `Wells score incomplete: ${r.fields.wells}`;
  const judgement = r.pending.map((c) => ` Not counted yet: ${c.label} (${signed(c.points)}), your call.`).join("");
  $("step").textContent = r.step ? `Next step (NICE NG158): ${fill(r.step.summary, r.fields, false)}.${judgement}` : "";
  $("step-detail").innerHTML = r.step ? fill(r.step.detail_html, r.fields, true) : "";
  $("result").classList.toggle("is-warning", !!r.step && r.step.indicator !== "info");
  $("result").dataset.complete = String(r.complete);
  return r;
}

function questionnaireResponse(client, data, answers) {
  const items = data.criteria.filter((c) => c.id in answers).map((c) => ({
    linkId: c.id, text: c.ask || c.label, answer: [{ valueBoolean: answers[c.id] }],
  }));
  const response = {
    resourceType: "QuestionnaireResponse",
    questionnaire: `${data.questionnaire.url}|${data.questionnaire.version}`,
    status: "completed",
    subject: { reference: `Patient/${client.patient.id}` },
    authored: new Date().toISOString(),
    item: items,
  };
  if (client.encounter && client.encounter.id) {
    response.encounter = { reference: `Encounter/${client.encounter.id}` };
  }
  const user = client.getFhirUser && client.getFhirUser();
  if (user && USER.test(user)) response.author = { reference: user.match(USER)[0] };
  return response;
}

async function main() {
  const client = await FHIR.oauth2.ready();
  const config = await fetch("config.json").then((reply) => reply.json());
  const { prefetch, unread } = await readChart(client, config);
  $("patient").textContent = patientLine(prefetch.patient || {});
  const user = (client.getFhirUser && client.getFhirUser()) || "";
  const hookRequest = {
    hook: "patient-view",
    hookInstance: crypto.randomUUID(),
    context: { userId: USER.test(user) ? user.match(USER)[0] : "Practitioner/smart-app",
               patientId: client.patient.id },
    prefetch,
  };
  const reply = await fetch(`${APP}/score`, {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify(hookRequest),
  });
  const scored = await reply.json();
  if (!reply.ok) throw new Error(scored.error || `the service answered HTTP ${reply.status}`);
  const data = scored;
  const answers = {};
  $("source").textContent = data.score.source.label;
  $("source").href = data.score.source.url;
  showKnown(data);
  showQuestions(data, answers, () => showResult(data, answers));
  showResult(data, answers);
  $("status").textContent = `Chart read as of ${scored.as_of.slice(0, 10)}.`
    + (unread.length ? ` Not readable here, so counted as unknown: ${unread.join(", ")}.` : "");
  $("ask").hidden = false;
  $("ask").addEventListener("submit", async (event) => {
    event.preventDefault();
    const saved = $("saved");
    if (!Object.keys(answers).length) {
      saved.classList.add("is-error");
      saved.textContent = "Answer at least one question first.";
      return;
    }
    $("save").disabled = true;
    try {
      const created = await client.create(questionnaireResponse(client, data, answers));
      saved.classList.remove("is-error");
      saved.textContent = `Saved to the record as QuestionnaireResponse/${created.id}. `
        + "The next time the chart is opened, the Wells card counts these answers.";
      saved.dataset.saved = created.id;
    } catch (err) {
      saved.classList.add("is-error");
      saved.textContent = `Not saved: ${err.message}`;
      $("save").disabled = false;
    }
  });
}

main().catch((err) => {
  const status = $("status");
  status.classList.add("is-error");
  status.textContent = `Could not complete the launch: ${err.message}`;
});
