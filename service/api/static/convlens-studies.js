// The studies of Zeiler and Fergus beside the drawing, on the hooks convlens.js gives:
// - Invariance: a slider per transform (shift-x, shift-y, rotate, scale). Each drawing's curves come from
//   POST /v1/invariance (JSON: per amount the transformed 28x28 input, the target's probability, the predicted class
//   and each layer's distance from the original); moving a slider shows that amount's input and numbers at once and,
//   debounced, sends that input through /v1/inspect, so the prediction, the activation grids and a selected filter's
//   deconvolution follow it. The curves are drawn from the same JSON, with the slider's amount marked; the service's
//   own figure 5 opens as a PNG.
// - A selected filter's optimized input (GET /v1/filters/{layer}/{filter}/optimized) beside its deconvolution, and
//   its evolution during training (GET .../evolution?format=png) under its top-9: each hidden where the service has
//   none (404, or 503 before `python -m training analyze`).
// - A plain sentence when the digit judge says the image does not look like a digit (`digit_like` false).

import { ApiError } from "./convlens-api.js";
import { analyse, api } from "./convlens.js";

const $ = (id) => document.getElementById(id);
const TRANSFORMS = {
  "shift-x": { label: "shift right", identity: 0, format: (v) => `${v > 0 ? "+" : ""}${v} px` },
  "shift-y": { label: "shift down", identity: 0, format: (v) => `${v > 0 ? "+" : ""}${v} px` },
  rotate: { label: "rotate (counter-clockwise)", identity: 0, format: (v) => `${v > 0 ? "+" : ""}${v.toFixed(1)}°` },
  scale: { label: "scale", identity: 1, format: (v) => `×${v.toFixed(3).replace(/0+$/, "").replace(/\.$/, "")}` },
};
const LAYER_COLORS = { conv1: "#2563eb", conv2: "#16a34a", pool: "#f59e0b", dense1: "#dc2626" };
const DEBOUNCE_MS = 70;  // a slider's inspect request waits this long for the next move

const studies = {
  original: null,        // the Blob of the last drawing or upload (what the curves are about)
  curves: new Map(),     // transform -> Promise of its POST /v1/invariance answer for `original`
  data: new Map(),       // transform -> that answer, once it is in
  shown: "rotate",       // the transform whose curves are drawn
  moved: null,           // {transform, index} of the slider away from identity, or null
  timer: 0,
  generation: 0,         // bumped on every new drawing: late answers for an older one are dropped
  filterController: null,
  urls: {},
};

// ---------------------------------------------------------------- "this does not look like a digit"

function judge(result, origin) {
  const note = $("not-digit");
  const flagged = result?.digit_like === false;
  note.hidden = !flagged;
  document.body.dataset.digitLike = result?.digit_like === undefined || result?.digit_like === null
    ? "unknown" : String(result.digit_like);
  if (flagged) {
    const moved = origin === "transform";
    $("not-digit-text").textContent =
      `${moved ? "Moved this far, the input no longer looks" : "This does not look"} like a digit. The network ` +
      `still answers ${result.digit}, because it always picks one of the ten, but the digit judge scores this ` +
      `image ${result.digit_like_score.toFixed(2)}, above its threshold of ${result.digit_like_threshold.toFixed(2)} ` +
      `(calibrated on real MNIST digits). ${moved ? "" : "Draw one digit, large and centred."}`;
  }
}

// ---------------------------------------------------------------- invariance: sliders and curves

function buildSliders() {
  const list = $("invariance-sliders");
  for (const [name, spec] of Object.entries(TRANSFORMS)) {
    const row = document.createElement("label");
    row.className = "slider";
    row.dataset.transform = name;
    row.innerHTML = `<span class="name"></span><input type="range" min="0" max="16" step="1" value="8">` +
                    `<output class="amount"></output>`;
    row.querySelector(".name").textContent = spec.label;
    const input = row.querySelector("input");
    input.setAttribute("aria-label", `${spec.label}: amount`);
    input.dataset.transform = name;
    const prefetch = () => { if (studies.original) curvesOf(name); };
    input.addEventListener("pointerenter", prefetch);
    input.addEventListener("focus", prefetch);
    input.addEventListener("input", () => slide(name, Number(input.value)));
    list.append(row);
  }
  $("invariance-reset").addEventListener("click", resetToOriginal);
  $("invariance-figure").addEventListener("click", showFigure);
}

function slider(name) {
  return $("invariance-sliders").querySelector(`input[data-transform="${name}"]`);
}

/** The answer for `name` about the current drawing, asked once (prefetched on hover or focus). */
function curvesOf(name) {
  if (!studies.curves.has(name)) {
    const image = studies.original;
    const generation = studies.generation;
    const promise = api.request(`/v1/invariance?transform=${name}&preprocess=auto`, {
      method: "POST", body: image, headers: { "Content-Type": image.type || "application/octet-stream" },
    }).then((response) => response.json()).then((data) => {
      if (generation === studies.generation) {
        studies.data.set(name, data);
        prepareSlider(name, data);
      }
      return data;
    });
    promise.catch(() => studies.curves.delete(name));
    studies.curves.set(name, promise);
  }
  return studies.curves.get(name);
}

function identityIndex(name, data) {
  const wanted = TRANSFORMS[name].identity;
  let best = 0;
  data.amounts.forEach((amount, i) => {
    if (Math.abs(amount - wanted) < Math.abs(data.amounts[best] - wanted)) best = i;
  });
  return best;
}

/** The answer is in: the slider spans its amounts (the value the user may have moved it to meanwhile is kept). */
function prepareSlider(name, data) {
  const input = slider(name);
  if (Number(input.max) !== data.amounts.length - 1) {
    input.max = String(data.amounts.length - 1);
    input.value = String(identityIndex(name, data));
  }
  input.closest(".slider").querySelector(".amount").textContent = TRANSFORMS[name].format(data.amounts[input.value]);
}

/** A new drawing (or upload): forget the old curves, put every slider back, and ask for the shown transform's. */
async function newOriginal(image) {
  studies.original = image;
  studies.generation++;
  studies.curves.clear();
  studies.data.clear();
  studies.moved = null;
  clearTimeout(studies.timer);
  $("invariance").hidden = false;
  $("invariance").dataset.moved = "";
  $("invariance-reset").disabled = true;
  for (const name of Object.keys(TRANSFORMS)) {
    const input = slider(name);
    input.value = String(Math.round(Number(input.max) / 2));
    input.closest(".slider").querySelector(".amount").textContent = TRANSFORMS[name].format(TRANSFORMS[name].identity);
  }
  await showCurves(studies.shown);
}

async function showCurves(name, index = null) {
  const generation = studies.generation;
  const panel = $("invariance");
  panel.dataset.curves = "";
  let data;
  try {
    data = await curvesOf(name);
  } catch (error) {
    if (generation === studies.generation) $("invariance-step").textContent = `The curves are unavailable: ${error.message}`;
    return;
  }
  if (generation !== studies.generation) return;
  studies.shown = name;
  const at = index ?? identityIndex(name, data);
  drawCurves($("invariance-curves"), name, data, at);
  describeStep(name, data, at);
  panel.dataset.curves = name;
}

function describeStep(name, data, index) {
  const amount = TRANSFORMS[name].format(data.amounts[index]);
  const p = data.probability[index];
  $("invariance-step").textContent =
    `${name} ${amount}: predicted ${data.predicted[index]}, p(${data.target}) = ${(100 * p).toFixed(1)} % ` +
    `(tracking ${data.target}, the class predicted for the original)`;
  $("invariance-preview").src = data.inputs[index];
}

/** A slider moved: show its amount's input and numbers now, and send that input through /v1/inspect shortly. */
async function slide(name, index) {
  const generation = studies.generation;
  for (const other of Object.keys(TRANSFORMS)) {  // one transform at a time, as the API does
    if (other === name) continue;
    const input = slider(other);
    const known = studies.data.get(other);
    input.value = String(known ? identityIndex(other, known) : Math.round(Number(input.max) / 2));
    input.closest(".slider").querySelector(".amount").textContent = TRANSFORMS[other].format(TRANSFORMS[other].identity);
  }
  let data;
  try {
    data = await curvesOf(name);
  } catch (error) {
    $("invariance-step").textContent = `The curves are unavailable: ${error.message}`;
    return;
  }
  if (generation !== studies.generation) return;
  index = Math.min(Number(slider(name).value), data.amounts.length - 1);  // the latest position, if it moved meanwhile
  slider(name).closest(".slider").querySelector(".amount").textContent = TRANSFORMS[name].format(data.amounts[index]);
  const identity = index === identityIndex(name, data);
  studies.moved = identity ? null : { transform: name, index };
  $("invariance").dataset.moved = identity ? "" : `${name}:${index}`;
  $("invariance-reset").disabled = identity;
  studies.shown = name;
  drawCurves($("invariance-curves"), name, data, index);
  describeStep(name, data, index);
  $("invariance").dataset.curves = name;
  clearTimeout(studies.timer);
  studies.timer = setTimeout(() => {
    if (generation !== studies.generation) return;
    const image = identity ? studies.original : dataUrlBlob(data.inputs[index]);
    analyse(image, performance.now(), identity ? "drawing-again" : "transform");
  }, DEBOUNCE_MS);
}

function resetToOriginal() {
  const name = studies.moved?.transform;
  if (!name) return;
  studies.curves.get(name).then((data) => {
    slider(name).value = String(identityIndex(name, data));
    slide(name, identityIndex(name, data));
  });
}

/** A data: URL as a Blob, without fetch (the page's CSP allows no data: connections). */
function dataUrlBlob(url) {
  const [head, body] = url.split(",", 2);
  const bytes = Uint8Array.from(atob(body), (c) => c.charCodeAt(0));
  return new Blob([bytes], { type: head.slice(5).split(";")[0] });
}

/** The three panels of figure 5 from the JSON: distances (each relative to its largest), probability, class. */
function drawCurves(canvas, name, data, index) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || 620;
  const height = 190;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  canvas.style.height = `${height}px`;
  const g = canvas.getContext("2d");
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, width, height);
  g.font = "11px system-ui, sans-serif";
  const gap = 34;
  const panel = (width - 2 * gap - 40) / 3;
  const top = 20;
  const bottom = height - 34;
  const first = data.amounts[0];
  const last = data.amounts[data.amounts.length - 1];
  const panels = [
    { title: "layer distance ÷ its max", lo: 0, hi: 1 },
    { title: `p(${data.target})`, lo: 0, hi: 1 },
    { title: "predicted class", lo: 0, hi: 9 },
  ];
  panels.forEach((p, k) => {
    const left = 30 + k * (panel + gap);
    const x = (amount) => left + (amount - first) / ((last - first) || 1) * panel;
    const y = (value) => bottom - (value - p.lo) / (p.hi - p.lo) * (bottom - top);
    g.strokeStyle = "#cbd5e1";
    g.lineWidth = 1;
    g.strokeRect(left, top, panel, bottom - top);
    g.fillStyle = "#475569";
    g.textAlign = "left";
    g.fillText(p.title, left, top - 6);
    g.textAlign = "center";
    g.fillText(TRANSFORMS[name].format(first), left + 8, bottom + 14);
    g.fillText(TRANSFORMS[name].format(last), left + panel - 8, bottom + 14);
    g.textAlign = "right";
    g.fillText(String(p.hi), left - 4, top + 8);
    g.fillText(String(p.lo), left - 4, bottom);
    const series = k === 0
      ? Object.entries(data.distance).map(([layer, values]) => {
        const most = Math.max(...values) || 1;
        return [LAYER_COLORS[layer] || "#64748b", values.map((v) => v / most)];
      })
      : [["#2563eb", k === 1 ? data.probability : data.predicted]];
    for (const [color, values] of series) {
      g.strokeStyle = color;
      g.fillStyle = color;
      g.lineWidth = 1.6;
      if (k === 2) {
        values.forEach((v, i) => g.fillRect(x(data.amounts[i]) - 2, y(v) - 2, 4, 4));
      } else {
        g.beginPath();
        values.forEach((v, i) => (i ? g.lineTo(x(data.amounts[i]), y(v)) : g.moveTo(x(data.amounts[i]), y(v))));
        g.stroke();
      }
    }
    g.strokeStyle = "#0f172a";
    g.setLineDash([3, 3]);
    g.beginPath();
    g.moveTo(x(data.amounts[index]), top);
    g.lineTo(x(data.amounts[index]), bottom);
    g.stroke();
    g.setLineDash([]);
  });
  let legend = 30;
  g.textAlign = "left";
  for (const [layer, color] of Object.entries(LAYER_COLORS)) {
    g.fillStyle = color;
    g.fillRect(legend, height - 12, 10, 3);
    g.fillStyle = "#475569";
    g.fillText(layer, legend + 14, height - 7);
    legend += 64;
  }
}

/** The service's own figure 5 for this drawing and the shown transform, in the plot dialog. */
async function showFigure() {
  if (!studies.original) return;
  const dialog = $("plot-dialog");
  const plot = $("plot");
  $("plot-title").textContent = `Invariance to ${studies.shown}: figure 5 for this drawing`;
  plot.removeAttribute("src");
  plot.alt = "loading…";
  dialog.showModal();
  try {
    const url = await api.png(`/v1/invariance?transform=${studies.shown}&preprocess=auto&format=png`, {
      method: "POST", body: studies.original,
      headers: { "Content-Type": studies.original.type || "application/octet-stream" },
    });
    keep("figure", url);
    plot.alt = `invariance to ${studies.shown}`;
    plot.src = url;
  } catch (error) {
    plot.alt = error.message;
  }
}

function keep(slot, url) {
  if (studies.urls[slot]) URL.revokeObjectURL(studies.urls[slot]);
  studies.urls[slot] = url;
}

// ---------------------------------------------------------------- a filter's optimized input and evolution

function filterFigures() {
  const deconvFigure = $("deconv").closest("figure");
  const optimized = document.createElement("figure");
  optimized.id = "optimized-figure";
  optimized.hidden = true;
  optimized.innerHTML = `<img id="optimized" class="pixelated thumb-lg" alt="the input that excites this filter most">
    <figcaption>optimized input: what this filter wants to see (gradient ascent)</figcaption>`;
  deconvFigure.after(optimized);
  const evolution = document.createElement("figure");
  evolution.id = "evolution-figure";
  evolution.className = "evolution";
  evolution.hidden = true;
  evolution.innerHTML = `<img id="evolution" class="pixelated" alt="the filter's evolution during training">
    <figcaption>during training: at each recorded epoch, the test image that excites this filter most, beside its
    projection with that epoch's weights</figcaption>`;
  $("top-images-figure").after(evolution);
}

/** A PNG that a service may not have: null on 404 or 501 and on 503 (statistics absent, or not analysed yet). */
async function maybePng(path) {
  try {
    return await api.optionalPng(path);
  } catch (error) {
    if (error instanceof ApiError && error.status === 503) return null;
    throw error;
  }
}

async function showFilter({ layer, filter }) {
  studies.filterController?.abort();
  const controller = studies.filterController = new AbortController();
  const slots = [
    ["optimized", `/v1/filters/${layer}/${filter}/optimized?scale=6&labels=false`],
    ["evolution", `/v1/filters/${layer}/${filter}/evolution?format=png&scale=2`],
  ];
  for (const [slot] of slots) $(slot).classList.add("loading");
  await Promise.all(slots.map(async ([slot, path]) => {
    let url = null;
    try {
      url = await maybePng(path);
    } catch (error) {
      console.warn(`${slot} unavailable:`, error.message);
    }
    if (controller.signal.aborted) {
      if (url) URL.revokeObjectURL(url);
      return;
    }
    const img = $(slot);
    $(`${slot}-figure`).hidden = !url;
    img.classList.remove("loading");
    if (!url) return;
    keep(slot, url);
    img.src = url;
    try {
      await img.decode();
    } catch { /* replaced meanwhile */ }
    img.dataset.filter = `${layer}/${filter}`;
  }));
}

// ---------------------------------------------------------------- wiring

document.addEventListener("convlens:result", ({ detail }) => {
  judge(detail.result, detail.origin);
  if (detail.origin === "drawing") newOriginal(detail.image);
});
document.addEventListener("convlens:filter", ({ detail }) => showFilter(detail));
document.addEventListener("convlens:clear", () => {
  studies.generation++;
  studies.original = null;
  studies.curves.clear();
  studies.data.clear();
  studies.moved = null;
  clearTimeout(studies.timer);
  studies.filterController?.abort();
  $("invariance").hidden = true;
  $("not-digit").hidden = true;
  for (const id of ["optimized-figure", "evolution-figure"]) $(id).hidden = true;
  document.body.dataset.digitLike = "";
});
window.addEventListener("resize", () => {
  if (!studies.original || $("invariance").hidden) return;
  const index = studies.moved?.transform === studies.shown ? studies.moved.index : null;
  showCurves(studies.shown, index);
});

buildSliders();
filterFigures();
