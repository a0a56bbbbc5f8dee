// The studies of Zeiler and Fergus beside the drawing, on the hooks convlens.js gives:
// - Invariance: a slider per transform (shift-x, shift-y, rotate, scale). Each drawing's curves come from
//   POST /v1/invariance (JSON: per amount the transformed 28x28 input, the target's probability, the predicted class
//   and each layer's distance from the original); moving a slider shows that amount's input and numbers at once and,
//   debounced, sends that input through /v1/inspect, so the prediction, the activation grids and a selected filter's
//   deconvolution follow it. The curves are drawn from the same JSON, with the slider's amount marked; the service's
//   own figure 5 opens as a PNG.
// - A selected filter's optimized input (GET /v1/filters/{layer}/{filter}/optimized) beside its deconvolution, and
//   its evolution during training (GET .../evolution?format=png) under its top-9: each hidden where the service has
//   none (404; 503 before `python -m training analyze`; 422 for an imported model's evolution), the reason said.
// - A plain sentence when the digit judge says the image does not look like a digit (`digit_like` false).
// Every request names the selected model (`model=NAME` for an imported one: its curves hold each of its layers, its
// classes by index and label); a part the service has none of for it says why under the detail panel.

import { ApiError, imagePost } from "./convlens-api.js";
import { analyse, api, modelInfo, modelQuery, pictureScale, showAbsence } from "./convlens.js";

const $ = (id) => document.getElementById(id);
const TRANSFORMS = {
  "shift-x": { label: "shift right", identity: 0, format: (v) => `${v > 0 ? "+" : ""}${v} px` },
  "shift-y": { label: "shift down", identity: 0, format: (v) => `${v > 0 ? "+" : ""}${v} px` },
  rotate: { label: "rotate (counter-clockwise)", identity: 0, format: (v) => `${v > 0 ? "+" : ""}${v.toFixed(1)}°` },
  scale: { label: "scale", identity: 1, format: (v) => `×${v.toFixed(3).replace(/0+$/, "").replace(/\.$/, "")}` },
};
const LAYER_COLORS = { conv1: "#2563eb", conv2: "#16a34a", pool: "#f59e0b", dense1: "#dc2626" };
const PALETTE = ["#2563eb", "#16a34a", "#f59e0b", "#dc2626", "#7c3aed", "#0891b2", "#db2777", "#65a30d", "#64748b"];
const LEGEND_ROW = 14;   // CSS px of one row of the curves' legend
const DEBOUNCE_MS = 70;  // a slider's inspect request waits this long for the next move

const studies = {
  original: null,        // the Blob of the last drawing or upload (what the curves are about)
  curves: new Map(),     // transform -> Promise of its POST /v1/invariance answer for `original`
  data: new Map(),       // transform -> that answer, once it is in
  shown: "rotate",       // the transform whose curves are drawn
  moved: null,           // {transform, index} of the slider away from identity, or null
  timer: 0,
  generation: 0,         // bumped on every new drawing: late answers for an older one are dropped
  query: "",             // the model the curves are about, as a query parameter
  labels: null,          // an imported model's class labels by index (null: the shipped digits)
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
    const path = `/v1/invariance?transform=${name}&preprocess=auto${studies.query}`;
    const promise = api.request(path, imagePost(image)).then((response) => response.json()).then((data) => {
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
  const generation = studies.generation;
  studies.query = modelQuery();
  try {
    studies.labels = document.body.dataset.kind === "imported" ? (await modelInfo()).labels : null;
  } catch (error) {
    $("invariance-step").textContent = `The model's classes could not be read: ${error.message}`;
    return;
  }
  if (generation !== studies.generation) return;
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

/** A class index as the page names it: its label for an imported model, the digit for a shipped one. */
function classLabel(index) {
  return studies.labels?.[index] ?? String(index);
}

function describeStep(name, data, index) {
  const amount = TRANSFORMS[name].format(data.amounts[index]);
  const p = data.probability[index];
  const target = classLabel(data.target);
  $("invariance-step").textContent =
    `${name} ${amount}: predicted ${classLabel(data.predicted[index])}, p(${target}) = ${(100 * p).toFixed(1)} % ` +
    `(tracking ${target}, the class predicted for the original)`;
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
  const g = canvas.getContext("2d");
  g.font = "11px system-ui, sans-serif";
  const layers = Object.keys(data.distance);
  const legend = legendLayout(g, layers, width);
  const height = 190 + LEGEND_ROW * (legend.rows - 1);
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  canvas.style.height = `${height}px`;
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, width, height);
  g.font = "11px system-ui, sans-serif";
  const gap = 34;
  const panel = (width - 2 * gap - 40) / 3;
  const top = 20;
  const bottom = height - 20 - LEGEND_ROW * legend.rows;
  const first = data.amounts[0];
  const last = data.amounts[data.amounts.length - 1];
  const colors = layerColors(layers);
  const panels = [
    { title: "layer distance ÷ its max", lo: 0, hi: 1 },
    { title: `p(${classLabel(data.target)})`, lo: 0, hi: 1 },
    studies.labels ? { title: "predicted class (index)", lo: 0, hi: studies.labels.length - 1 }
      : { title: "predicted class", lo: 0, hi: 9 },
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
        return [colors[layer], values.map((v) => v / most)];
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
  g.textAlign = "left";
  for (const { layer, x, row } of legend.entries) {
    const y = height - LEGEND_ROW * (legend.rows - 1 - row);
    g.fillStyle = colors[layer];
    g.fillRect(x, y - 12, 10, 3);
    g.fillStyle = "#475569";
    g.fillText(layer, x + 14, y - 7);
  }
}

/** Each layer's colour: the shipped layers' own, an imported model's from the palette in layer order. */
function layerColors(layers) {
  return Object.fromEntries(layers.map((layer, k) => [layer, LAYER_COLORS[layer] ?? PALETTE[k % PALETTE.length]]));
}

/** Where each layer's legend entry goes: left to right from x = 30, on a new row when the next would not fit. */
function legendLayout(g, layers, width) {
  const entries = [];
  let x = 30;
  let row = 0;
  for (const layer of layers) {
    const room = Math.max(64, 14 + g.measureText(layer).width + 12);
    if (x > 30 && x + room > width) {
      x = 30;
      row++;
    }
    entries.push({ layer, x, row });
    x += room;
  }
  return { entries, rows: row + 1 };
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
    const url = await api.png(
      `/v1/invariance?transform=${studies.shown}&preprocess=auto&format=png${studies.query}`, imagePost(studies.original),
    );
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

async function showFilter({ layer, filter }) {
  studies.filterController?.abort();
  const controller = studies.filterController = new AbortController();
  const model = modelQuery();
  const scale = await pictureScale();
  const slots = [
    ["optimized", "optimized input", `/v1/filters/${layer}/${filter}/optimized?scale=${scale}&labels=false${model}`],
    ["evolution", "evolution during training", `/v1/filters/${layer}/${filter}/evolution?format=png&scale=2${model}`],
  ];
  for (const [slot] of slots) $(slot).classList.add("loading");
  await Promise.all(slots.map(async ([slot, part, path]) => {
    let url = null;
    try {
      url = await api.png(path);
    } catch (error) {
      if (!controller.signal.aborted && error instanceof ApiError) showAbsence(part, error.message);
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
