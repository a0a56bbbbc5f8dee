// The "Explain" panel: why the network decides. After each analysis (the "convlens:result" event of convlens.js),
// the chosen attribution method's heat map over the 28x28 input for the predicted class; clicking a class's
// probability bar explains that class instead ("why a 7 and not a 1"). Grad-CAM and occlusion come back from the
// service already placed over the input (28x28 x scale), like every other method.

import { api } from "./convlens.js";

const $ = (id) => document.getElementById(id);
const panel = { api: null, image: null, target: null, predicted: null, url: null, controller: null };

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
      `/v1/attribution/${method}?preprocess=auto&scale=6&labels=false&target=${target}`,
      { method: "POST", body: panel.image, signal: controller.signal,
        headers: { "Content-Type": panel.image.type || "application/octet-stream" } },
    );
    const url = URL.createObjectURL(await response.blob());
    if (panel.url) URL.revokeObjectURL(panel.url);
    panel.url = url;
    $("explain-map").src = url;
    const [low, high] = (response.headers.get("X-Colormap-Range") || "0,0").split(",").map(Number);
    const colormap = response.headers.get("X-Colormap") || "";
    $("explain-legend").textContent =
      `${method} for class ${target}${target === panel.predicted ? " (predicted)" : ""}: ${colormap} colour map, ` +
      `${low.toPrecision(3)} … ${high.toPrecision(3)}`;
    $("explain").dataset.state = "ready";
    $("explain").dataset.method = method;
    $("explain").dataset.target = String(target);
  } catch (error) {
    if (error.name === "AbortError") return;
    $("explain").dataset.state = "error";
    $("explain-legend").textContent = error.message;
  }
}

document.addEventListener("convlens:result", (event) => {
  if (document.body.dataset.kind === "imported") return;  // attribution maps serve the shipped models only
  Object.assign(panel, { api: event.detail.api, image: event.detail.image, predicted: event.detail.digit,
                         target: null });
  explain();
});
$("explain-method").addEventListener("change", explain);
$("bars").addEventListener("click", (event) => {
  const row = event.target.closest("li");
  if (!row || !panel.image) return;
  panel.target = [...$("bars").children].indexOf(row);
  explain();
});
