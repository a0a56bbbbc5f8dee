// The "Explain" panel: why the network decides. After each analysis (the "convlens:result" event of convlens.js),
// the chosen attribution method's heat map over the 28x28 input for the predicted class; clicking a class's
// probability bar explains that class instead ("why a 7 and not a 1"). Grad-CAM and occlusion come back from the
// service already placed over the input (28x28 x scale), like every other method. Under the map, the numbers that
// say how far to trust it: the service's quality metrics of that same map (?metrics=all), with the sanity checks'
// verdict, asked once the map is shown. For an imported model every request names it (`model=NAME`); the menu
// offers the methods its GET /v1/models/{name} lists and shows the others disabled with the service's reason; a
// target is a class index (each probability bar carries its own, as an imported model's bars are its top classes).
// A CAM whose head is cut from an imported model's file has no sanity checks: the box says why in the service's
// words (its 422 to `metrics=sanity`, asked only then, refused before any run).

import { imagePost } from "./convlens-api.js";
import { api, modelInfo, modelQuery, pictureScale } from "./convlens.js";

const $ = (id) => document.getElementById(id);
const panel = {
  api: null, image: null, target: null, predicted: null, query: "", scale: 6, labels: new Map(), url: null,
  controller: null,
};

// The menu comes from the service's own list of methods (their names, titles and notes), so a method the service
// adds appears here without a change to the page.
const methodsReady = (async () => {
  try {
    const response = await api.request("/attribution-methods.json");
    const { methods } = await response.json();
    for (const method of methods) {
      const option = new Option(method.text ? `${method.title} ${method.text}` : method.title, method.name);
      option.selected = method.selected;
      $("explain-method").append(option);
    }
    $("explain").dataset.methods = String(methods.length);
  } catch (error) {
    $("explain-legend").textContent = `the list of methods could not be read: ${error.message}`;
  }
})();

/** Enable the methods the selected model has; the others stay listed, disabled, with the reason as their title. */
async function offerMethodsOf(kind) {
  await methodsReady;
  let served = null;
  let reason = "";
  if (kind === "imported") {
    const { name, capabilities } = await modelInfo();
    served = new Set(capabilities.attribution_methods);
    reason = `not served for ${name}: ${capabilities.no_gradients ?? "the service lists no such method for it"}`;
  }
  const menu = $("explain-method");
  for (const option of menu.options) {
    option.disabled = served !== null && !served.has(option.value);
    option.title = option.disabled ? reason : "";
  }
  if (menu.selectedOptions[0]?.disabled) {
    const fallback = [...menu.options].find((option) => !option.disabled);
    if (fallback) menu.value = fallback.value;
  }
}

async function explain() {
  if (!panel.api || !panel.image) return;
  await methodsReady;
  const method = $("explain-method").value;
  const target = panel.target ?? panel.predicted;
  panel.controller?.abort();
  const controller = panel.controller = new AbortController();
  $("explain").dataset.state = "busy";
  try {
    const response = await panel.api.request(
      `/v1/attribution/${method}?preprocess=auto&scale=${panel.scale}&labels=false&target=${target}${panel.query}`,
      imagePost(panel.image, controller.signal),
    );
    const url = URL.createObjectURL(await response.blob());
    if (panel.url) URL.revokeObjectURL(panel.url);
    panel.url = url;
    $("explain-map").src = url;
    const [low, high] = (response.headers.get("X-Colormap-Range") || "0,0").split(",").map(Number);
    const colormap = response.headers.get("X-Colormap") || "";
    $("explain-legend").textContent =
      `${method} for class ${panel.labels.get(target) ?? target}${target === panel.predicted ? " (predicted)" : ""}: ` +
      `${colormap} colour map, ` +
      `${low.toPrecision(3)} … ${high.toPrecision(3)}`;
    $("explain").dataset.state = "ready";
    $("explain").dataset.method = method;
    $("explain").dataset.target = String(target);
    await quality(method, target, controller);
  } catch (error) {
    if (error.name === "AbortError") return;
    $("explain").dataset.state = "error";
    $("explain-legend").textContent = error.message;
  }
}

const number = (value) => (value === null || value === undefined ? "undefined" : Number(value).toPrecision(3));

// Each metric as a row: its name, its value (and what a random order or the rule would give), and which way is better.
function qualityRows(metrics) {
  const rows = [];
  const has = (name) => metrics[name] !== null && metrics[name] !== undefined;  // JSON names every metric
  const curve = (name, label, better) => {
    const value = metrics[name];
    if (has(name)) rows.push([label, `${number(value.area)} (random order ${number(value.random_area)})`, better]);
  };
  curve("deletion", "Deletion area", "lower is more faithful");
  curve("insertion", "Insertion area", "higher is more faithful");
  if (has("road_morf")) rows.push(["ROAD, most relevant first", number(metrics.road_morf.area), "lower is better"]);
  if (has("road_lerf")) rows.push(["ROAD, least relevant first", number(metrics.road_lerf.area), "higher is better"]);
  if (has("faithfulness_correlation")) {
    rows.push(["Faithfulness correlation", number(metrics.faithfulness_correlation), "higher is better"]);
  }
  if (has("max_sensitivity")) rows.push(["Max-sensitivity", number(metrics.max_sensitivity), "lower is better"]);
  if (has("sparseness")) rows.push(["Sparseness (Gini)", number(metrics.sparseness), "higher is sparser"]);
  if (has("completeness_gap")) {
    rows.push(["Completeness gap", number(metrics.completeness_gap), "near 0 is complete"]);
  }
  return rows;
}

// The sanity checks' verdict in words, with the numbers it rests on.
function sanityText(sanity) {
  const cascade = sanity.parameter_randomization;
  const last = cascade.similarity[cascade.similarity.length - 1];
  const logit = sanity.random_logit;
  return `${sanity.passes ? "passes" : "fails"} the sanity checks: with every layer's weights re-drawn the map's ` +
    `Spearman similarity is ${number(last.spearman)} (passes below ${cascade.spearman_threshold}; ` +
    `${cascade.passes ? "pass" : "fail"}); against class ${logit.other_class}'s map its SSIM is ` +
    `${number(logit.ssim)} (passes below ${logit.ssim_threshold}; ${logit.passes ? "pass" : "fail"})`;
}

async function quality(method, target, controller) {
  const box = $("explain-quality");
  box.dataset.state = "busy";
  try {
    const response = await panel.api.request(
      `/v1/attribution/${method}?preprocess=auto&format=json&metrics=all&target=${target}${panel.query}`,
      imagePost(panel.image, controller.signal),
    );
    const { metrics } = await response.json();
    const list = document.createElement("dl");
    for (const [label, value, better] of qualityRows(metrics)) {
      const term = document.createElement("dt");
      term.textContent = label;
      const detail = document.createElement("dd");
      detail.textContent = `${value} · ${better}`;
      list.append(term, detail);
    }
    const verdict = document.createElement("p");
    if (metrics.sanity) {
      verdict.className = `sanity ${metrics.sanity.passes ? "pass" : "fail"}`;
      verdict.textContent = sanityText(metrics.sanity);
      box.dataset.sanity = metrics.sanity.passes ? "pass" : "fail";
    } else {
      verdict.className = "sanity none";
      verdict.textContent = `No sanity checks: ${await whyNoSanity(method, target, controller)}`;
      box.dataset.sanity = "none";
    }
    box.replaceChildren(verdict, list);
    box.dataset.state = "ready";
  } catch (error) {
    if (error.name === "AbortError") return;
    box.dataset.state = "error";
    box.replaceChildren(`quality metrics: ${error.message}`);
  }
}

/** The service's reason for leaving the sanity checks out of `metrics=all`: its answer to naming them. */
async function whyNoSanity(method, target, controller) {
  try {
    await panel.api.request(
      `/v1/attribution/${method}?preprocess=auto&format=json&metrics=sanity&target=${target}${panel.query}`,
      imagePost(panel.image, controller.signal),
    );
    return "the service measured none for this map";
  } catch (error) {
    if (error.name === "AbortError") throw error;
    return error.message;
  }
}

document.addEventListener("convlens:result", async (event) => {
  const { result } = event.detail;
  const kind = document.body.dataset.kind ?? "shipped";
  const entries = result.top ?? result.probabilities.map((_, index) => ({ index, label: String(index) }));
  Object.assign(panel, {
    api: event.detail.api, image: event.detail.image, predicted: event.detail.digit, target: null,
    query: modelQuery(), labels: new Map(entries.map(({ index, label }) => [index, label])),
  });
  try {
    panel.scale = await pictureScale();
    await offerMethodsOf(kind);
  } catch (error) {
    $("explain").dataset.state = "error";
    $("explain-legend").textContent = `the model's methods could not be read: ${error.message}`;
    return;
  }
  explain();
});
$("explain-method").addEventListener("change", explain);
$("bars").addEventListener("click", (event) => {
  const row = event.target.closest("li");
  if (!row?.dataset.index || !panel.image) return;
  panel.target = Number(row.dataset.index);
  explain();
});
