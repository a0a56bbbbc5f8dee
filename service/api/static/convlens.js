// The convlens page: a drawing pad (mouse, pen, touch) and file drop; on every stroke end one POST /v1/inspect
// updates the prediction, the probability bars, every layer's activation grid (active filters outlined) and the
// autoencoder's reconstruction. Clicking a feature map asks for that filter's deconvolution for this image, its
// top-9 test images and links to the dataset statistics (those two only where the service has them: hidden when
// it answers 404, as before the statistics endpoints, or 503, as without `python -m training analyze`; the service's
// reason is said under the panel).
// The model selector (GET /v1/models) chooses the network: an imported one shows its labelled top classes (each bar
// carries its class index in data-index) and its layers (the 64 most active maps of a larger layer), and every
// panel asks the service about it with `model=NAME`. A part the model cannot have says why, in the service's words.
// Other modules hook in through `api`, `analyse`, `modelQuery`, `modelInfo`, `pictureScale`, `showAbsence` and the
// events "convlens:result", "convlens:filter" and "convlens:clear".

import { Api, ApiError, apiBase, apiKeys, trusted } from "./convlens-api.js";

const $ = (id) => document.getElementById(id);
const LINE_WIDTH = 20;          // canvas px on the 280x280 pad: MNIST-like stroke once scaled to 20 px
const GRID_TARGET = 320;        // CSS px a layer grid is scaled to, by a whole factor so pixels stay crisp
const DETAIL_SIZE = 168;       // CSS px of the feature map and deconvolution in the detail panel (28 x 6)
const SHIPPED_SCALE = 6;        // a shipped model's 28x28 pictures at DETAIL_SIZE
const OUTLINE = 3;              // CSS px of room around a grid for the outlines
const COLORS = { active: "#f59e0b", selected: "#22d3ee", hover: "#ffffff", cell: "rgba(255,255,255,0.16)" };

const keyInput = $("api-key");
const base = apiBase();
export const api = new Api(base, () => keyInput.value.trim(), trusted(new URL(base).origin));
localStorage.removeItem("convlens.apiKey"); // the one key of earlier versions, kept for whatever origin was asked
keyInput.value = apiKeys.get(api.origin);

const state = {
  image: null,        // the Blob last sent (canvas PNG or the dropped file)
  result: null,       // the last /v1/inspect answer
  views: new Map(),   // layer name -> its card's elements and scale
  selected: null,     // {layer, filter}
  hover: null,        // {layer, filter}
  seq: 0,
  origin: "drawing",  // what state.image is: "drawing" (the pad or a file) or another module's (convlens-studies.js)
  controller: null,
  detailController: null,
  statistics: false,  // whether this service has the dataset statistics endpoints
  urls: {},           // object URLs to revoke, by slot
  absences: new Map(), // detail panel part -> why the service has none for this model
  models: new Map(),   // model name -> Promise of its GET /v1/models/{name} answer
};

// ---------------------------------------------------------------- drawing pad

const pad = $("pad");
const ink = pad.getContext("2d");
let stroke = null;

function resetPad() {
  ink.fillStyle = "#fff";
  ink.fillRect(0, 0, pad.width, pad.height);
}

function padPoint(event) {
  const box = pad.getBoundingClientRect();
  return [(event.clientX - box.left) * pad.width / box.width, (event.clientY - box.top) * pad.height / box.height];
}

function dot([x, y]) {
  ink.fillStyle = "#000";
  ink.beginPath();
  ink.arc(x, y, LINE_WIDTH / 2, 0, 2 * Math.PI);
  ink.fill();
}

function line(from, to) {
  ink.strokeStyle = "#000";
  ink.lineWidth = LINE_WIDTH;
  ink.lineCap = ink.lineJoin = "round";
  ink.beginPath();
  ink.moveTo(...from);
  ink.lineTo(...to);
  ink.stroke();
}

pad.addEventListener("pointerdown", (event) => {
  if (event.button !== 0 || stroke) return;
  event.preventDefault();
  pad.setPointerCapture(event.pointerId);
  stroke = { id: event.pointerId, last: padPoint(event) };
  dot(stroke.last);
});

pad.addEventListener("pointermove", (event) => {
  if (!stroke || event.pointerId !== stroke.id) return;
  const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
  for (const each of events.length ? events : [event]) {
    const point = padPoint(each);
    line(stroke.last, point);
    stroke.last = point;
  }
});

function endStroke(event) {
  if (!stroke || event.pointerId !== stroke.id) return;
  stroke = null;
  const ended = performance.now();
  pad.toBlob((blob) => analyse(blob, ended), "image/png");
}

pad.addEventListener("pointerup", endStroke);
pad.addEventListener("pointercancel", endStroke);

$("clear").addEventListener("click", clearAll);

// ---------------------------------------------------------------- files: upload and drop

async function loadFile(file) {
  if (!file) return;
  const started = performance.now();
  resetPad();
  try {
    const bitmap = await createImageBitmap(file);
    const fit = Math.min(pad.width / bitmap.width, pad.height / bitmap.height);
    const [w, h] = [bitmap.width * fit, bitmap.height * fit];
    ink.drawImage(bitmap, (pad.width - w) / 2, (pad.height - h) / 2, w, h);
  } catch { /* a format this browser cannot show: the service may still read it */ }
  analyse(file, started);
}

$("file").addEventListener("change", (event) => {
  loadFile(event.target.files[0]);
  event.target.value = "";
});

const dropZone = $("drop-zone");
dropZone.addEventListener("dragover", (event) => {
  event.preventDefault();
  dropZone.classList.add("dragging");
});
dropZone.addEventListener("dragleave", () => dropZone.classList.remove("dragging"));
dropZone.addEventListener("drop", (event) => {
  event.preventDefault();
  dropZone.classList.remove("dragging");
  loadFile(event.dataTransfer.files[0]);
});

// ---------------------------------------------------------------- one request per stroke end

/** Send ``image`` to /v1/inspect and show the answer; ``origin`` tells the "convlens:result" listeners what it is:
 * "drawing" for the pad or a file, anything else for an image another module derived from it. */
export async function analyse(image, started, origin = "drawing") {
  state.image = image;
  state.origin = origin;
  const seq = ++state.seq;
  document.body.dataset.seq = String(seq);
  state.controller?.abort();
  const controller = state.controller = new AbortController();
  document.body.dataset.state = "busy";
  try {
    const result = await api.inspect(image, controller.signal, modelSelect.value);
    if (seq !== state.seq) return;
    await render(result);
    const elapsed = performance.now() - started;
    $("timing").textContent = `updated ${Math.round(elapsed)} ms after the stroke`;
    document.body.dataset.latency = elapsed.toFixed(1);
    document.body.dataset.updates = String(Number(document.body.dataset.updates) + 1);
    document.body.dataset.shown = String(seq);
    document.body.dataset.state = "ready";
    setStatus(`Predicted ${result.label ?? result.digit}. Keep drawing, or clear and draw another image.`);
    if (state.selected) showDetail(false);
    document.dispatchEvent(
      new CustomEvent("convlens:result", { detail: { api, result, image, origin, digit: result.digit } }),
    );
  } catch (error) {
    if (error.name === "AbortError" || seq !== state.seq) return;
    document.body.dataset.state = "error";
    showError(error);
  }
}

function setStatus(text, isError = false) {
  const status = $("status");
  status.textContent = text;
  status.classList.toggle("error", isError);
}

function showError(error) {
  if (error instanceof ApiError && error.status === 401) {
    keyInput.classList.add("needed");
    keyInput.focus();
    setStatus("This service needs an API key: enter it at the top right.", true);
  } else {
    setStatus(error.message, true);
  }
}

// ---------------------------------------------------------------- prediction, input, reconstruction

function buildBars(count = 10) {
  const bars = $("bars");
  bars.replaceChildren();
  for (let row = 0; row < count; row++) {
    const item = document.createElement("li");
    item.innerHTML = `<span class="label"></span><span class="track"><span class="fill"></span></span>` +
                     `<span class="value"></span>`;
    bars.append(item);
  }
}

/** The bars: a shipped model's ten digits in order; an imported model's ``top`` classes, most probable first. */
function showPrediction(result) {
  const entries = result.top ??
    result.probabilities.map((probability, index) => ({ index, label: String(index), probability }));
  if ($("bars").children.length !== entries.length) buildBars(entries.length);
  $("digit").textContent = result.label ?? String(result.digit);
  $("confidence").textContent = `${(100 * result.probabilities[result.digit]).toFixed(1)} % sure`;
  [...$("bars").children].forEach((row, position) => {
    const { index, label, probability: p } = entries[position];
    row.dataset.index = String(index);
    row.classList.toggle("top", index === result.digit);
    row.querySelector(".label").textContent = label;
    row.querySelector(".fill").style.width = `${(100 * p).toFixed(2)}%`;
    row.querySelector(".value").textContent = p >= 0.0005 ? `${(100 * p).toFixed(1)}%` : "<0.1%";
  });
}

async function render(result) {
  state.result = result;
  showPrediction(result);
  const loads = [setImage($("input"), result.input), captionInput()];
  const reconstruction = $("reconstruction");
  reconstruction.closest("figure").hidden = !result.reconstruction;
  if (result.reconstruction) loads.push(setImage(reconstruction, result.reconstruction));
  loads.push(...result.layers.map((layer) => showLayer(layer)));
  await Promise.all(loads);
  if (state.selected && !state.views.has(state.selected.layer)) state.selected = null;
}

/** The Input card's caption: the shipped models see MNIST's 28x28; an imported model its own input size. */
async function captionInput() {
  let text = "what the network sees (28×28, MNIST-style)";
  if (document.body.dataset.kind === "imported") {
    const { input } = await modelInfo();
    text = `what the network sees (${input.width}×${input.height}, through the model's own preprocessing)`;
  }
  $("input-caption").textContent = text;
}

async function setImage(img, src) {
  img.src = src;
  try {
    await img.decode();
  } catch { /* replaced by a newer image meanwhile */ }
}

// ---------------------------------------------------------------- layer grids

function layerView(name) {
  if (state.views.has(name)) return state.views.get(name);
  const card = document.createElement("article");
  card.className = "card layer";
  card.dataset.layer = name;
  card.innerHTML = `<h2><span class="name"></span> <span class="meta"></span></h2>
    <div class="grid-wrap"><img class="grid pixelated" alt=""><canvas class="overlay"></canvas></div>
    <p class="muted summary"></p>`;
  $("layers").append(card);
  const view = { name, card, img: card.querySelector("img"), overlay: card.querySelector("canvas"), scale: 1 };
  view.img.alt = `activation grid of ${name}`;
  card.querySelector(".name").textContent = name;
  const wrap = card.querySelector(".grid-wrap");
  wrap.addEventListener("pointermove", (event) => hover(view, event));
  wrap.addEventListener("pointerleave", () => hover(view, null));
  wrap.addEventListener("click", (event) => {
    const filter = filterAt(view, event);
    if (filter !== null) select(name, filter);
  });
  state.views.set(name, view);
  return view;
}

async function showLayer(layer) {
  const view = layerView(layer.layer);
  const grid = layer.grid;
  view.layer = layer;
  view.scale = Math.max(1, Math.round(GRID_TARGET / grid.width));
  const [h, w, c] = layer.shape;
  view.card.querySelector(".meta").textContent = `${h}×${w}×${c}`;
  view.card.querySelector(".summary").textContent =
    `${layer.active.length} of ${c} filters active · threshold ${layer.threshold.toFixed(2)} (${layer.threshold_rule} ${layer.norm} norm)`;
  view.card.dataset.active = layer.active.join(",");
  Object.assign(view.img.dataset, {
    columns: grid.columns, rows: grid.rows, tileHeight: grid.tile[0], tileWidth: grid.tile[1], pad: grid.pad,
    width: grid.width, height: grid.height,
  });
  view.img.style.width = `${grid.width * view.scale}px`;
  view.img.style.height = `${grid.height * view.scale}px`;
  await setImage(view.img, grid.image);
  drawOverlay(view);
}

/** The filter under the pointer, from the grid's geometry: tile k at row k // columns, column k % columns. */
function filterAt(view, event) {
  const grid = view.layer?.grid;
  if (!grid) return null;
  const box = view.img.getBoundingClientRect();
  const x = (event.clientX - box.left) / box.width * grid.width;
  const y = (event.clientY - box.top) / box.height * grid.height;
  const column = Math.floor(x / (grid.tile[1] + grid.pad));
  const row = Math.floor(y / (grid.tile[0] + grid.pad));
  if (x < 0 || y < 0 || column >= grid.columns || row >= grid.rows) return null;
  const tile = row * grid.columns + column;
  return tile < tileCount(view) ? (grid.channels?.[tile] ?? tile) : null;
}

/** How many tiles the grid has: one per filter, or past 64 maps one per filter it names (`grid.channels`). */
function tileCount(view) {
  return view.layer.grid.channels?.length ?? view.layer.norms.length;
}

/** The tile that shows ``filter``: its index, or its place in `grid.channels`; -1 when the grid leaves it out. */
function tileOf(view, filter) {
  const { channels } = view.layer.grid;
  return channels ? channels.indexOf(filter) : filter;
}

function cellBox(view, tile) {
  const { grid } = view.layer;
  const column = tile % grid.columns;
  const row = Math.floor(tile / grid.columns);
  const s = view.scale;
  return [OUTLINE + column * (grid.tile[1] + grid.pad) * s, OUTLINE + row * (grid.tile[0] + grid.pad) * s,
          grid.tile[1] * s, grid.tile[0] * s];
}

function drawOverlay(view) {
  if (!view.layer) return;
  const { grid } = view.layer;
  const ratio = window.devicePixelRatio || 1;
  const [w, h] = [grid.width * view.scale + 2 * OUTLINE, grid.height * view.scale + 2 * OUTLINE];
  const canvas = view.overlay;
  if (canvas.width !== Math.round(w * ratio) || canvas.height !== Math.round(h * ratio)) {
    canvas.width = Math.round(w * ratio);
    canvas.height = Math.round(h * ratio);
    canvas.style.width = `${w}px`;
    canvas.style.height = `${h}px`;
  }
  const g = canvas.getContext("2d");
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, w, h);
  const frame = (filter, color, width) => {
    const tile = tileOf(view, filter);
    if (tile < 0) return;
    const [x, y, cw, ch] = cellBox(view, tile);
    g.strokeStyle = color;
    g.lineWidth = width;
    g.strokeRect(x - width / 2, y - width / 2, cw + width, ch + width);
  };
  const active = new Set(view.layer.active);
  for (let tile = 0; tile < tileCount(view); tile++) {
    const filter = grid.channels?.[tile] ?? tile;
    frame(filter, active.has(filter) ? COLORS.active : COLORS.cell, active.has(filter) ? 2 : 1);
  }
  if (state.hover?.layer === view.name) frame(state.hover.filter, COLORS.hover, 1);
  if (state.selected?.layer === view.name) frame(state.selected.filter, COLORS.selected, 3);
}

function describe(layer, filter) {
  const norm = layer.norms[filter];
  const activity = layer.active.includes(filter) ? `active (> ${layer.threshold.toFixed(2)})`
                                                  : `inactive (≤ ${layer.threshold.toFixed(2)})`;
  const name = `${layer.layer} · filter ${filter}`;
  const info = `norm ${norm.toFixed(2)} — ${activity}`;
  return { name, info, text: `${name} · ${info}` };
}

function hover(view, event) {
  const tooltip = $("tooltip");
  const filter = event ? filterAt(view, event) : null;
  const previous = state.hover;
  state.hover = filter === null ? null : { layer: view.name, filter };
  if (filter === null) {
    tooltip.hidden = true;
  } else {
    tooltip.textContent = describe(view.layer, filter).text;
    tooltip.hidden = false;
    tooltip.style.left = `${event.clientX + 14}px`;
    tooltip.style.top = `${event.clientY + 14}px`;
  }
  if (previous?.layer !== state.hover?.layer || previous?.filter !== state.hover?.filter) {
    drawOverlay(view);
    if (previous && previous.layer !== view.name) drawOverlay(state.views.get(previous.layer));
  }
}

// ---------------------------------------------------------------- one filter in detail

function select(layer, filter) {
  const previous = state.selected;
  state.selected = { layer, filter };
  if (previous && previous.layer !== layer) drawOverlay(state.views.get(previous.layer));
  drawOverlay(state.views.get(layer));
  showDetail(true);
}

function revokeLater(slot, url) {
  if (state.urls[slot]) URL.revokeObjectURL(state.urls[slot]);
  state.urls[slot] = url;
}

/** Fill the detail panel; `fresh` when the selection changed (the top-9 depend on the filter, not the image). */
async function showDetail(fresh) {
  const { layer, filter } = state.selected;
  const view = state.views.get(layer);
  const detail = $("detail");
  $("detail-body").hidden = false;
  $("detail-placeholder").hidden = true;
  detail.dataset.layer = layer;
  detail.dataset.filter = filter;
  const about = describe(view.layer, filter);
  $("detail-title").textContent = about.name;
  $("detail-info").textContent = about.info;
  drawFeatureMap(view, filter);

  state.detailController?.abort();
  const controller = state.detailController = new AbortController();
  const deconv = $("deconv");
  deconv.classList.add("loading");
  const image = state.image;
  clearAbsences(fresh ? null : "deconvolution");
  const query = `${modelQuery()}&scale=${await pictureScale()}`;
  const requests = [api.deconvolution(image, layer, filter, controller.signal, query).then(async (url) => {
    if (controller.signal.aborted) return URL.revokeObjectURL(url);
    revokeLater("deconv", url);
    await setImage(deconv, url);
    deconv.dataset.filter = `${layer}/${filter}`;
    deconv.classList.remove("loading");
  })];
  if (fresh) {
    document.dispatchEvent(new CustomEvent("convlens:filter", { detail: { layer, filter } }));
    requests.push(showTopImages(layer, filter, controller), showStatisticsLinks(layer));
    if (window.matchMedia("(max-width: 900px)").matches) detail.scrollIntoView({ behavior: "smooth" });
  }
  try {
    await Promise.all(requests);
  } catch (error) {
    if (error.name === "AbortError") return;
    deconv.classList.remove("loading");
    if (error instanceof ApiError && error.status !== 401) showAbsence("deconvolution", error.message);
    else showError(error);
  }
}

/** Say under the detail panel why one of its parts is missing for this model, in the service's own words (its
 * first sentence: a refusal goes on to list every route the model has). */
export function showAbsence(part, message) {
  state.absences.set(part, message.split(". For ")[0]);
  const list = $("detail-absent");
  list.replaceChildren(...[...state.absences].map(([name, reason]) => {
    const item = document.createElement("li");
    item.dataset.part = name;
    item.textContent = `No ${name}: ${reason}`;
    return item;
  }));
  list.hidden = false;
}

/** Forget why ``part`` was missing (every part's reason when null), before asking for it again. */
function clearAbsences(part = null) {
  if (part === null) state.absences.clear();
  else state.absences.delete(part);
  const list = $("detail-absent");
  for (const item of [...list.children]) {
    if (!state.absences.has(item.dataset.part)) item.remove();
  }
  list.hidden = state.absences.size === 0;
}

function drawFeatureMap(view, filter) {
  const { grid } = view.layer;
  const canvas = $("detail-map");
  const s = Math.max(1, Math.floor(DETAIL_SIZE / Math.max(...grid.tile)));
  canvas.width = grid.tile[1] * s;
  canvas.height = grid.tile[0] * s;
  const g = canvas.getContext("2d");
  g.imageSmoothingEnabled = false;
  const tile = tileOf(view, filter);
  canvas.closest("figure").hidden = tile < 0;  // past 64 maps, this image's grid may leave the filter out
  if (tile < 0) return;
  const column = tile % grid.columns;
  const row = Math.floor(tile / grid.columns);
  g.drawImage(view.img, column * (grid.tile[1] + grid.pad), row * (grid.tile[0] + grid.pad), grid.tile[1],
              grid.tile[0], 0, 0, canvas.width, canvas.height);
}

async function showTopImages(layer, filter, controller) {
  const figure = $("top-images-figure");
  let url = null;
  try {
    url = await api.png(`/v1/filters/${layer}/${filter}/top-images?format=png&labels=false${modelQuery()}`);
  } catch (error) {
    if (!controller.signal.aborted) showAbsence("top images", error.message);
  }
  if (controller.signal.aborted) {
    if (url) URL.revokeObjectURL(url);
    return;
  }
  figure.hidden = !url;
  if (url) {
    revokeLater("top", url);
    await setImage($("top-images"), url);
  }
}

// ---------------------------------------------------------------- dataset statistics (where the service has them)

// ---------------------------------------------------------------- model selector

const modelSelect = $("model");

/** Fill the selector with the models that classify (GET /v1/models); an imported model is marked as such. */
async function loadModels() {
  try {
    const models = await api.classifiers();
    modelSelect.replaceChildren(...models.map((model) => {
      const option = new Option(model.kind === "imported" ? `${model.name} (imported)` : model.name, model.name);
      option.dataset.kind = model.kind;
      return option;
    }));
  } catch (error) {
    showError(error);
  }
  document.body.dataset.models = String(modelSelect.options.length);
}

modelSelect.addEventListener("change", () => {
  document.body.dataset.kind = modelSelect.selectedOptions[0]?.dataset.kind ?? "shipped";
  Object.assign(state, { selected: null, hover: null });
  state.views.clear();
  $("layers").replaceChildren();
  $("detail-body").hidden = true;
  $("detail-placeholder").hidden = false;
  clearAbsences();
  probeStatistics();
  if (state.image) analyse(state.image, performance.now(), state.origin);
});

/** The selected model as a query parameter (none for the shipped classifier, the default). */
export function modelQuery() {
  const name = modelSelect.value;
  return name && name !== "classifier" ? `&model=${encodeURIComponent(name)}` : "";
}

/** The selected model's GET /v1/models/{name} answer (its input size, its attribution methods), asked once. */
export function modelInfo() {
  const name = modelSelect.value;
  if (!state.models.has(name)) {
    const answer = api.request(`/v1/models/${encodeURIComponent(name)}`).then((response) => response.json());
    answer.catch(() => state.models.delete(name));
    state.models.set(name, answer);
  }
  return state.models.get(name);
}

/** The factor that shows the selected model's input-sized pictures at about DETAIL_SIZE px (6 for a 28x28 one). */
export async function pictureScale() {
  if (document.body.dataset.kind !== "imported") return SHIPPED_SCALE;
  const { input } = await modelInfo();
  return Math.max(1, Math.round(DETAIL_SIZE / Math.max(input.height, input.width)));
}

async function probeStatistics() {
  try {
    state.statistics = await api.exists(`/v1/statistics${modelQuery().replace("&", "?")}`);
  } catch {
    state.statistics = false;
  }
  if (state.selected) showStatisticsLinks(state.selected.layer);
}

function showStatisticsLinks(layer) {
  const nav = $("stats");
  nav.hidden = !state.statistics;
  if (!state.statistics) return;
  const imported = modelSelect.selectedOptions[0]?.dataset.kind === "imported";
  const links = [
    [`Active filters per class (${layer})`, `/v1/statistics/active-filters/${layer}?format=png${modelQuery()}`],
    [`Norm distribution per filter (${layer})`, `/v1/statistics/norms/${layer}?format=png${modelQuery()}`],
    ...(imported ? [] : [
      ["Confusion matrix", "/v1/statistics/confusion-matrix?format=png"],
      ["Training history", "/v1/statistics/training-history?format=png"],
    ]),
  ];
  const list = $("stats-links");
  list.replaceChildren(...links.map(([title, path]) => {
    const item = document.createElement("li");
    const link = document.createElement("a");
    link.href = api.url(path);
    link.target = "_blank";
    link.rel = "noopener";
    link.textContent = title;
    link.addEventListener("click", (event) => {
      event.preventDefault();
      showPlot(title, path);
    });
    item.append(link);
    return item;
  }));
}

async function showPlot(title, path) {
  const dialog = $("plot-dialog");
  $("plot-title").textContent = title;
  const plot = $("plot");
  plot.removeAttribute("src");
  plot.alt = "loading…";
  dialog.showModal();
  try {
    const url = await api.optionalPng(path);
    if (!url) {
      plot.alt = "this plot is not available on this service";
      return;
    }
    revokeLater("plot", url);
    plot.alt = title;
    plot.src = url;
  } catch (error) {
    plot.alt = error.message;
  }
}

// ---------------------------------------------------------------- reset and settings

function clearAll() {
  document.body.dataset.seq = String(++state.seq);
  state.controller?.abort();
  state.detailController?.abort();
  Object.assign(state, { image: null, result: null, selected: null, hover: null });
  state.views.clear();
  resetPad();
  $("layers").replaceChildren();
  $("detail-body").hidden = true;
  $("detail-placeholder").hidden = false;
  clearAbsences();
  $("detail-title").textContent = "One filter";
  $("detail-info").textContent = "";
  $("digit").textContent = "–";
  $("confidence").innerHTML = "&nbsp;";
  $("timing").innerHTML = "&nbsp;";
  for (const row of $("bars").children) {
    row.classList.remove("top");
    row.querySelector(".fill").style.width = "0";
    row.querySelector(".value").textContent = "";
  }
  for (const img of [$("input"), $("reconstruction")]) img.removeAttribute("src");
  document.body.dataset.state = "idle";
  setStatus("Draw one digit in the box, as large as you like.");
  document.dispatchEvent(new CustomEvent("convlens:clear"));
}

keyInput.addEventListener("change", () => {
  apiKeys.set(api.origin, keyInput.value.trim());
  keyInput.classList.remove("needed");
  state.models.clear();
  probeStatistics();
  loadModels();
  if (state.image) analyse(state.image, performance.now(), state.origin);
});
$("settings").addEventListener("submit", (event) => {
  event.preventDefault();
  keyInput.dispatchEvent(new Event("change"));
});

// A service on another origin than the one confirmed last: ask before anything (drawing or key) is sent there.
function askToConnect() {
  $("connect-origin").textContent = api.origin;
  $("connect").hidden = false;
  document.body.dataset.connection = "asking";
  $("connect-button").addEventListener("click", () => {
    api.confirm();
    $("connect").hidden = true;
    document.body.dataset.connection = "confirmed";
    probeStatistics();
    loadModels();
    if (state.image) analyse(state.image, performance.now(), state.origin);
  }, { once: true });
}

$("api-base").textContent = `API ${api.base.replace(/^https?:\/\//, "")}`;
buildBars();
resetPad();
if (api.confirmed) {
  document.body.dataset.connection = "trusted";
  probeStatistics();
  loadModels();
} else {
  askToConnect();
}
document.body.dataset.state = "idle";
