// kikuchi map explorer: the page. No framework, no build step.
//
// The base map is fetched once per choice (PNG); patterns arrive as binary
// messages (24-byte header + little-endian pixels, see kikuchi/explore/encode.py).
// At most one pattern request is in flight: while it runs, only the latest
// wanted point is remembered, so a fast mouse never queues stale requests.
// window.kikuchiExplorer exposes the state for tests and benchmarks.
"use strict";

(function () {
  const HEADER_BYTES = 24;
  const DTYPES = { 1: Uint8Array, 2: Uint16Array, 3: Float32Array };
  const DTYPE_NAMES = { 1: "uint8", 2: "uint16", 3: "float32" };
  const CACHE_SIZE = 64;
  const READ_AHEAD_MAX_MS = 25;  // read ahead only while a pattern costs less than this
  // A server bound to the network asks for a token: the page gives it to this script's address, and the
  // script adds it to every request (the cookie it also sets is not sent from an IFrame on another site).
  const TOKEN = new URL(document.currentScript.src).searchParams.get("token");
  const api = (url) => (TOKEN ? `${url}${url.includes("?") ? "&" : "?"}token=${encodeURIComponent(TOKEN)}` : url);
  // Display sizes: map and pattern side by side, shrunk to fit narrow windows (a Jupyter IFrame).
  function sizes() {
    // window less the page margins, the gap and the panels' padding and borders
    const room = Math.max(400, (window.innerWidth || 1280) - 110);
    const pattern = Math.min(480, Math.round(room * 0.47));
    return { mapW: Math.min(540, room - pattern), mapH: 560, pattern };
  }

  const $ = (id) => document.getElementById(id);
  const el = {
    status: $("status"), file: $("file-name"),
    mapSelect: $("map-select"), legend: $("map-legend"),
    map: $("map"), mapOverlay: $("map-overlay"), coords: $("coords"), pinned: $("pinned"), mapValue: $("map-value"),
    signal: $("signal-select"), options: $("signal-options"),
    npaLabel: $("npa-label"), npa: $("npa-slider"), npaValue: $("npa-value"),
    nlparLabel: $("nlpar-label"), nlpar: $("nlpar-radius"), lambdaLabel: $("lambda-label"), lambda: $("nlpar-lambda"),
    pattern: $("pattern"), patternOverlay: $("pattern-overlay"), readout: $("pattern-readout"),
    histogram: $("histogram"), stats: $("pattern-stats"),
    saveTiff: $("save-tiff"), savePng: $("save-png"), processing: $("processing-list"),
    matchPanel: $("match-panel"), matchNcc: $("match-ncc"), matchInfo: $("match-info"),
  };

  const state = {
    info: null,
    mapName: null,
    mapImages: new Map(),   // name -> {bitmap, meta}
    hover: null,            // {row, col}
    pinned: null,
    wanted: null,           // {row, col, key, url, t0}
    inflight: null,         // key being fetched
    current: null,          // pattern shown: {row, col, npa, signal, dtype, h, w, data, checksum}
    cache: new Map(),       // key -> decoded pattern (LRU by insertion order)
    latencies: [],          // ms from the mouse reaching a point to its pattern drawn
    timings: [],            // per drawn pattern: {ms, fetchMs (request -> decoded), drawMs}
    framed: [],             // ms from the mouse reaching a point to the next frame after drawing
    requests: 0,            // pattern requests for points asked for
    readAhead: 0,           // pattern requests read ahead
    lastFetchMs: 0,
    errors: [],
    display: { mapW: 0, mapH: 0, patW: 0, patH: 0 },
  };

  // ---------------------------------------------------------------- helpers
  function setStatus(text, isError) {
    el.status.textContent = text;
    el.status.classList.toggle("error", !!isError);
    if (isError) state.errors.push(text);
  }

  async function errorText(response) {
    try {
      const body = await response.json();
      return `${response.status}: ${body.error}`;
    } catch (e) {
      return `${response.status} ${response.statusText}`;
    }
  }

  function fmt(x, digits) {
    if (!Number.isFinite(x)) return String(x);
    const a = Math.abs(x);
    if (a !== 0 && (a >= 1e5 || a < 1e-3)) return x.toExponential(3);
    return Number.isInteger(x) ? String(x) : x.toFixed(digits === undefined ? 3 : digits);
  }

  function micrometres(p) {
    const [dr, dc] = state.info.step_um;
    const digits = Math.min(dr, dc) < 0.05 ? 3 : 2;
    return `y ${(p.row * dr).toFixed(digits)} µm, x ${(p.col * dc).toFixed(digits)} µm`;
  }

  function hasPattern(p) {
    const hp = state.info.has_pattern;
    return !hp || hp[p.row * state.info.nav_shape[1] + p.col] === 1;
  }

  // FNV-1a (32 bit) over the little-endian bytes of the pixels: tests compare it with Python's.
  function checksum(bytes) {
    let h = 0x811c9dc5;
    for (let i = 0; i < bytes.length; i++) {
      h ^= bytes[i];
      h = Math.imul(h, 0x01000193) >>> 0;
    }
    return h.toString(16).padStart(8, "0");
  }

  function toBase64(typed) {
    const bytes = new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength);
    let text = "";
    for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    return btoa(text);
  }

  function decodePattern(buffer) {
    if (buffer.byteLength < HEADER_BYTES) throw new Error("short pattern message");
    const view = new DataView(buffer);
    const magic = String.fromCharCode(view.getUint8(0), view.getUint8(1), view.getUint8(2), view.getUint8(3));
    if (magic !== "KPAT" || view.getUint8(4) !== 1) throw new Error("not a kikuchi pattern message");
    const code = view.getUint8(5);
    const Type = DTYPES[code];
    if (!Type) throw new Error(`unknown pattern dtype code ${code}`);
    const h = view.getUint32(8, true), w = view.getUint32(12, true);
    if (buffer.byteLength !== HEADER_BYTES + h * w * Type.BYTES_PER_ELEMENT) throw new Error("pattern message of wrong length");
    // The page runs on little-endian machines (all current browsers): view the pixels in place.
    const data = new Type(buffer, HEADER_BYTES, h * w);
    return {
      npa: view.getUint8(6), h, w, row: view.getInt32(16, true), col: view.getInt32(20, true),
      dtype: DTYPE_NAMES[code], data,
      checksum: checksum(new Uint8Array(buffer, HEADER_BYTES)),
    };
  }

  // ------------------------------------------------------------ parameters
  function signalInfo() {
    return state.info.signals.find((s) => s.name === el.signal.value) || state.info.signals[0];
  }

  function patternParams(p) {
    const radius = nlparRadius();
    const params = new URLSearchParams({ row: p.row, col: p.col, npa: radius ? 0 : el.npa.value, signal: el.signal.value });
    if (radius) { params.set("nlpar", radius); params.set("lambda", el.lambda.value.trim() || "auto"); }
    for (const control of el.options.querySelectorAll("[name]")) params.set(control.name, control.value);
    return params.toString();
  }

  // NLPAR search radius asked for (0: off); it replaces the neighbour averaging while on.
  function nlparRadius() {
    const r = Math.round(Number(el.nlpar.value));
    return Number.isFinite(r) && r > 0 ? Math.min(r, Number(el.nlpar.max) || 5) : 0;
  }

  // One control per option of the chosen signal (kikuchi/explore/source.py declares them).
  function buildOptions() {
    const sig = signalInfo();
    el.options.replaceChildren();
    for (const [name, spec] of Object.entries(sig.options || {})) {
      const label = document.createElement("label");
      let control;
      if (spec.choices) {
        control = document.createElement("select");
        for (const choice of spec.choices) control.add(new Option(choice, choice));
        control.value = spec.default === null || spec.default === undefined ? spec.choices[0] : String(spec.default);
      } else {
        control = document.createElement("input");
        control.type = "number";
        control.min = spec.min; control.max = spec.max; control.step = "any";
        control.placeholder = "preset";
        control.value = spec.default === null || spec.default === undefined ? "" : String(spec.default);
      }
      control.name = name;
      control.dataset.testid = `option-${name}`;
      control.addEventListener("change", () => {
        if (name === "preset") applyPreset(control.value);
        refresh();
      });
      label.append(spec.unit ? `${name} (${spec.unit})` : name, control);
      el.options.append(label);
    }
  }

  function applyPreset(name) {
    const preset = state.info.presets[name];
    if (!preset) return;
    for (const control of el.options.querySelectorAll("[name]")) {
      if (control.name === "preset" || !(control.name in preset)) continue;
      const v = preset[control.name];
      if (control.name === "mask") control.value = v ? "on" : "off";
      else control.value = v === null ? "" : String(v);
    }
  }

  // --------------------------------------------------------------- patterns
  function show(p, t0) {
    if (!p) return;
    const key = patternParams(p);
    state.wanted = { row: p.row, col: p.col, key, t0: t0 === undefined ? performance.now() : t0 };
    pump();
  }

  // One pattern request: the decoded pattern, remembered in the page's cache.
  function requestPattern(key) {
    return fetch(api(`/api/pattern?${key}`))
      .then(async (response) => {
        if (!response.ok) throw new Error(await errorText(response));
        const pattern = decodePattern(await response.arrayBuffer());
        pattern.info = JSON.parse(response.headers.get("X-Pattern-Info") || "{}");
        pattern.signal = new URLSearchParams(key).get("signal");
        pattern.key = key;
        state.cache.set(key, pattern);
        if (state.cache.size > CACHE_SIZE) state.cache.delete(state.cache.keys().next().value);
        return pattern;
      });
  }

  function pump() {
    const want = state.wanted;
    if (!want) return;
    const cached = state.cache.get(want.key);
    if (cached) {
      state.wanted = null;
      draw(cached, want);
      return;
    }
    // the latest wish is fetched when the running request ends (or is the one read ahead)
    if (state.inflight !== null || ahead.inflight === want.key) return;
    const key = want.key;
    state.inflight = key;
    state.requests += 1;
    const tSent = performance.now();
    requestPattern(key)
      .then((pattern) => {
        state.lastFetchMs = performance.now() - tSent;
        if (state.wanted && state.wanted.key === key) {
          const w = state.wanted;
          state.wanted = null;
          pattern.fetchMs = state.lastFetchMs;  // request sent -> bytes decoded
          draw(pattern, w);
        }
      })
      .catch((err) => {
        if (state.wanted && state.wanted.key === key) state.wanted = null;
        setStatus(`pattern (${new URLSearchParams(key).get("row")}, ${new URLSearchParams(key).get("col")}): ${err.message}`, true);
      })
      .finally(() => {
        state.inflight = null;
        pump();
        readAhead();
      });
  }

  // Read-ahead on the page: while nothing else is asked for, fetch the four neighbours of the
  // point shown (the direction of the last move first) into the page's cache, so that the next
  // point under a moving mouse is drawn without a request. Skipped for patterns that take the
  // server long to make (averaging large windows, processing): they would only load it.
  const ahead = { inflight: null, dir: [0, 1] };

  function readAhead() {
    const p = state.current;
    if (!p || ahead.inflight !== null || state.inflight !== null || state.wanted) return;
    if (state.lastFetchMs > READ_AHEAD_MAX_MS) return;
    const [rows, cols] = state.info.nav_shape;
    const [dr, dc] = ahead.dir;
    const steps = [[dr, dc], [dr, 0], [0, dc], [0, 1], [1, 0], [0, -1], [-1, 0]];
    const seen = new Set();
    for (const [r, c] of steps) {
      if ((r === 0 && c === 0) || seen.has(`${r},${c}`)) continue;
      seen.add(`${r},${c}`);
      const q = { row: p.row + r, col: p.col + c };
      if (q.row < 0 || q.col < 0 || q.row >= rows || q.col >= cols || !hasPattern(q)) continue;
      const key = patternParams(q);
      if (state.cache.has(key)) continue;
      ahead.inflight = key;
      state.readAhead += 1;
      requestPattern(key)
        .catch(() => {})  // a failed guess costs nothing; the point reports its error when visited
        .finally(() => {
          ahead.inflight = null;
          pump();  // a wish for exactly this point waited for it
          readAhead();
        });
      return;
    }
  }

  function draw(p, want) {
    const tDraw = performance.now();
    const canvas = el.pattern;
    if (canvas.width !== p.w || canvas.height !== p.h) {
      canvas.width = p.w;
      canvas.height = p.h;
      layoutPattern();
    }
    let lo = Infinity, hi = -Infinity, sum = 0;
    const d = p.data, n = d.length;
    for (let i = 0; i < n; i++) {
      const v = d[i];
      if (v < lo) lo = v;
      if (v > hi) hi = v;
      sum += v;
    }
    const ctx = canvas.getContext("2d");
    const img = ctx.createImageData(p.w, p.h);
    const px = img.data;
    const scale = hi > lo ? 255 / (hi - lo) : 0;
    for (let i = 0, j = 0; i < n; i++, j += 4) {
      const g = hi > lo ? (d[i] - lo) * scale : 128;
      px[j] = px[j + 1] = px[j + 2] = g;
      px[j + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
    state.current = p;
    p.min = lo; p.max = hi; p.mean = sum / n;
    canvas.dataset.row = p.row;
    canvas.dataset.col = p.col;
    canvas.dataset.npa = p.npa;
    canvas.dataset.signal = p.signal;
    canvas.dataset.checksum = p.checksum;
    canvas.dataset.dtype = p.dtype;
    drawHistogram(p);
    el.stats.textContent = `${p.h} × ${p.w} ${p.dtype} · min ${fmt(lo)} · max ${fmt(hi)} · mean ${fmt(p.mean)}`;
    const where = `row ${p.row}, col ${p.col} (${micrometres(p)})`;
    const nl = p.info && p.info.nlpar ? ` · NLPAR, search radius ${p.info.nlpar}, λ ${fmt(p.info.nlpar_lambda, 3)}` : "";
    el.coords.textContent = `pattern at ${where}${p.npa ? ` · ${p.npa} neighbours averaged` : ""}${nl}`;
    canvas.dataset.nlpar = p.info && p.info.nlpar ? p.info.nlpar : 0;
    el.coords.dataset.row = p.row;
    el.coords.dataset.col = p.col;
    el.saveTiff.href = api(`/api/pattern.tiff?${p.key}`);
    el.savePng.href = api(`/api/pattern.png?${p.key}`);
    el.saveTiff.classList.remove("disabled");
    el.savePng.classList.remove("disabled");
    describeProcessing();
    drawPatternOverlay();
    updateMatch(p);
    const ms = performance.now() - want.t0;
    state.latencies.push(ms);
    state.timings.push({ ms, fetchMs: p.fetchMs === undefined ? 0 : p.fetchMs, drawMs: performance.now() - tDraw });
    p.fetchMs = undefined;  // a second draw of a cached pattern fetches nothing
    requestAnimationFrame(() => state.framed.push(performance.now() - want.t0));  // on screen with the next frame
    if (!el.status.classList.contains("error")) setStatus(`pattern shown ${fmt(ms, 1)} ms after the mouse reached it`);
    document.dispatchEvent(new CustomEvent("kikuchi:pattern", { detail: { row: p.row, col: p.col, ms } }));
    setTimeout(readAhead, 0);
  }

  function drawHistogram(p) {
    const canvas = el.histogram, ctx = canvas.getContext("2d");
    const W = canvas.width, H = canvas.height, bins = 64, counts = new Float64Array(bins);
    const lo = p.min, hi = p.max, span = hi > lo ? hi - lo : 1;
    for (let i = 0; i < p.data.length; i++) {
      let b = Math.floor(((p.data[i] - lo) / span) * bins);
      if (b >= bins) b = bins - 1;
      if (b < 0) b = 0;
      counts[b] += 1;
    }
    let top = 0;
    for (const c of counts) top = Math.max(top, c);
    ctx.clearRect(0, 0, W, H);
    const plotH = H - 16, bw = W / bins;
    ctx.fillStyle = "#4a5568";
    for (let b = 0; b < bins; b++) {
      const bh = top ? (counts[b] / top) * (plotH - 2) : 0;
      ctx.fillRect(b * bw, plotH - bh, Math.max(1, bw - 1), bh);
    }
    ctx.fillStyle = "#333";
    ctx.font = "11px system-ui, sans-serif";
    ctx.textBaseline = "bottom";
    ctx.textAlign = "left";
    ctx.fillText(fmt(lo), 2, H);
    ctx.textAlign = "right";
    ctx.fillText(fmt(hi), W - 2, H);
    ctx.textAlign = "center";
    ctx.fillText("intensity", W / 2, H);
    canvas.dataset.total = p.data.length;
  }

  // ------------------------------------------------------------ layout
  function layoutMap() {
    const [rows, cols] = state.info.nav_shape;
    const [dr, dc] = state.info.step_um;
    const aspect = (rows * dr) / (cols * dc);  // physical height / width
    const size = sizes();
    $("map-panel").style.width = `${size.mapW}px`;
    $("pattern-panel").style.width = `${size.pattern}px`;
    let w = size.mapW, h = w * aspect;
    if (h > size.mapH) { h = size.mapH; w = h / aspect; }
    w = Math.max(1, Math.round(w)); h = Math.max(1, Math.round(h));
    if (el.map.width !== cols || el.map.height !== rows) { el.map.width = cols; el.map.height = rows; }  // resizing clears
    el.map.style.width = `${w}px`; el.map.style.height = `${h}px`;
    const ratio = window.devicePixelRatio || 1;
    el.mapOverlay.width = Math.round(w * ratio); el.mapOverlay.height = Math.round(h * ratio);
    el.mapOverlay.style.width = `${w}px`; el.mapOverlay.style.height = `${h}px`;
    state.display.mapW = w; state.display.mapH = h;
  }

  function layoutPattern() {
    const h = el.pattern.height, w = el.pattern.width;
    const s = sizes().pattern / Math.max(h, w);
    const dw = Math.round(w * s), dh = Math.round(h * s);
    el.pattern.style.width = `${dw}px`; el.pattern.style.height = `${dh}px`;
    const ratio = window.devicePixelRatio || 1;
    el.patternOverlay.width = Math.round(dw * ratio); el.patternOverlay.height = Math.round(dh * ratio);
    el.patternOverlay.style.width = `${dw}px`; el.patternOverlay.style.height = `${dh}px`;
    state.display.patW = dw; state.display.patH = dh;
  }

  // --------------------------------------------------------------- the map
  async function loadMap(name) {
    state.mapName = name;
    let entry = state.mapImages.get(name);
    if (!entry) {
      setStatus(`loading map ${name}…`);
      const response = await fetch(api(`/api/map?name=${encodeURIComponent(name)}`));
      if (!response.ok) {
        setStatus(`map ${name}: ${await errorText(response)}`, true);
        return;
      }
      const meta = JSON.parse(response.headers.get("X-Map-Info") || "{}");
      const bitmap = await createImageBitmap(await response.blob());
      entry = { bitmap, meta, values: null };
      if (meta.kind !== "rgb") {  // the values under the mouse, for the readout
        const v = await fetch(api(`/api/map-values?name=${encodeURIComponent(name)}`));
        if (v.ok) entry.values = new Float32Array(await v.arrayBuffer());
      }
      state.mapImages.set(name, entry);
      setStatus("move the mouse over the map");
    }
    if (state.mapName !== name) return;
    const ctx = el.map.getContext("2d");
    ctx.imageSmoothingEnabled = false;
    ctx.clearRect(0, 0, el.map.width, el.map.height);
    ctx.drawImage(entry.bitmap, 0, 0);
    el.map.dataset.loaded = name;
    state.mapEntry = entry;
    drawLegend(entry.meta);
  }

  function drawLegend(meta) {
    el.legend.replaceChildren();
    if (meta.ipf_keys) {
      for (const key of meta.ipf_keys) {
        const img = document.createElement("img");
        img.src = api(`/api/ipf-key?phase=${encodeURIComponent(key.phase)}`);
        img.alt = `IPF colour key of ${key.name}`;
        img.className = "ipf-key";
        img.dataset.testid = "ipf-key";
        const span = document.createElement("span");
        span.append(img, key.name);
        el.legend.append(span);
      }
    } else if (meta.legend) {
      for (const item of meta.legend) {
        const span = document.createElement("span");
        const sw = document.createElement("span");
        sw.className = "swatch";
        sw.style.background = item.colour;
        span.append(sw, item.label || String(item.value));
        el.legend.append(span);
      }
    } else if (meta.vmin !== undefined) {
      const ramp = document.createElement("span");
      ramp.className = "ramp";
      el.legend.append(fmt(meta.vmin), ramp, fmt(meta.vmax));
    }
  }

  function niceLength(target) {
    const p = Math.pow(10, Math.floor(Math.log10(target)));
    for (const m of [5, 2, 1]) if (m * p <= target) return m * p;
    return p;
  }

  function drawMapOverlay() {
    const c = el.mapOverlay, ctx = c.getContext("2d");
    const ratio = c.width / state.display.mapW;
    const [rows, cols] = state.info.nav_shape;
    const sx = c.width / cols, sy = c.height / rows;
    ctx.clearRect(0, 0, c.width, c.height);
    const mark = (p, colour, size) => {
      const x = (p.col + 0.5) * sx, y = (p.row + 0.5) * sy;
      const r = Math.max(size * ratio, Math.min(sx, sy) / 2);
      ctx.lineWidth = 2 * ratio;
      ctx.strokeStyle = "rgba(0,0,0,0.7)";
      ctx.strokeRect(x - r - ratio, y - r - ratio, 2 * r + 2 * ratio, 2 * r + 2 * ratio);
      ctx.strokeStyle = colour;
      ctx.strokeRect(x - r, y - r, 2 * r, 2 * r);
    };
    if (state.hover) mark(state.hover, "#ffd60a", 3);
    if (state.pinned) {
      mark(state.pinned, "#ff3b30", 5);
      const x = (state.pinned.col + 0.5) * sx, y = (state.pinned.row + 0.5) * sy;
      ctx.strokeStyle = "rgba(255,59,48,0.6)";
      ctx.lineWidth = 1 * ratio;
      ctx.beginPath();
      ctx.moveTo(x, 0); ctx.lineTo(x, c.height);
      ctx.moveTo(0, y); ctx.lineTo(c.width, y);
      ctx.stroke();
    }
    // scale bar: a round length near a fifth of the map width
    const widthUm = cols * state.info.step_um[1];
    const length = niceLength(widthUm / 5);
    const barPx = (length / widthUm) * c.width;
    const label = `${Number(length.toPrecision(3))} µm`;
    ctx.font = `${12 * ratio}px system-ui, sans-serif`;
    const boxW = Math.max(barPx, ctx.measureText(label).width) + 10 * ratio;
    const x0 = 10 * ratio, y0 = c.height - 12 * ratio;
    ctx.fillStyle = "rgba(0,0,0,0.55)";
    ctx.fillRect(x0 - 5 * ratio, y0 - 20 * ratio, boxW, 27 * ratio);
    ctx.fillStyle = "#fff";
    ctx.fillRect(x0 + (boxW - 10 * ratio - barPx) / 2, y0, barPx, 4 * ratio);
    ctx.textAlign = "center";
    ctx.textBaseline = "bottom";
    ctx.fillText(label, x0 - 5 * ratio + boxW / 2, y0 - 2 * ratio);
    el.mapOverlay.dataset.scaleBarUm = length;
  }

  function pointAt(event) {
    const rect = el.map.getBoundingClientRect();
    const [rows, cols] = state.info.nav_shape;
    const col = Math.floor(((event.clientX - rect.left) / rect.width) * cols);
    const row = Math.floor(((event.clientY - rect.top) / rect.height) * rows);
    if (row < 0 || col < 0 || row >= rows || col >= cols) return null;
    return { row, col };
  }

  function describePinned() {
    if (!state.pinned) {
      el.pinned.textContent = "no point pinned (click the map)";
      delete el.pinned.dataset.row;
      delete el.pinned.dataset.col;
      return;
    }
    const p = state.pinned;
    el.pinned.textContent = `pinned: row ${p.row}, col ${p.col} (${micrometres(p)}); arrow keys move it`;
    el.pinned.dataset.row = p.row;
    el.pinned.dataset.col = p.col;
  }

  function pin(p) {
    state.pinned = p;
    describePinned();
    drawMapOverlay();
    show(p);
    sendPin(p);
  }

  // One pin request at a time, the latest point last: two posts in flight may reach the
  // server in either order, and the server must end on the point the page shows.
  let pinInFlight = false;
  let pinWaiting;  // undefined: nothing waiting; else the latest point not yet sent
  function sendPin(p) {
    if (pinInFlight) { pinWaiting = p; return; }
    pinInFlight = true;
    fetch(api("/api/pin"), { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(p) })
      .then(async (r) => { if (!r.ok) setStatus(`pin: ${await errorText(r)}`, true); })
      .catch((e) => setStatus(`pin: ${e.message}`, true))
      .finally(() => {
        pinInFlight = false;
        if (pinWaiting !== undefined) { const next = pinWaiting; pinWaiting = undefined; sendPin(next); }
      });
  }

  // "MAD (°) 0.42" or "phase Ni" of the base map under the mouse
  function mapValueText(p) {
    const entry = state.mapEntry;
    if (!entry || !entry.values) return "";
    const v = entry.values[p.row * state.info.nav_shape[1] + p.col];
    if (!Number.isFinite(v)) return "";
    const item = (entry.meta.legend || []).find((x) => x.value === v);
    return `${entry.meta.label} ${item ? item.label : fmt(v)}`;
  }

  function onMapMove(event) {
    const p = pointAt(event);
    if (!p) return;
    if (state.hover && state.hover.row === p.row && state.hover.col === p.col) return;
    if (state.hover) ahead.dir = [Math.sign(p.row - state.hover.row), Math.sign(p.col - state.hover.col)];
    state.hover = p;
    const text = mapValueText(p);
    el.mapValue.textContent = text ? `under the mouse: ${text}` : "";
    drawMapOverlay();
    if (hasPattern(p)) {
      show(p, event.timeStamp);
    } else {
      el.coords.textContent = `row ${p.row}, col ${p.col} (${micrometres(p)}): no pattern here`;
    }
  }

  function onMapLeave() {
    state.hover = null;
    drawMapOverlay();
    if (state.pinned) show(state.pinned);
  }

  function onKey(event) {
    const tag = event.target && event.target.tagName;
    if (tag === "INPUT" || tag === "SELECT" || tag === "TEXTAREA") return;
    const moves = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };
    const m = moves[event.key];
    const from = state.pinned || (state.current && { row: state.current.row, col: state.current.col });
    if (!m || !from) return;  // without a pin, the keys start from the pattern shown
    event.preventDefault();
    const [rows, cols] = state.info.nav_shape;
    const row = Math.min(rows - 1, Math.max(0, from.row + m[0]));
    const col = Math.min(cols - 1, Math.max(0, from.col + m[1]));
    state.hover = null;
    pin({ row, col });
  }

  // ------------------------------------------------------- pattern overlay
  // Overlays are fetched for the pattern shown, one request at a time, and drawn only if
  // that pattern is still the one shown.
  const overlays = {
    bands: { checkbox: $("overlay-bands"), route: "/api/bands", data: null, inflight: null, colour: "rgba(0, 229, 255, 0.9)" },
    lines: { checkbox: $("overlay-lines"), route: "/api/lines", data: null, inflight: null, colour: "rgba(255, 214, 10, 0.95)" },
  };

  function drawPatternOverlay() {
    const p = state.current;
    for (const [name, o] of Object.entries(overlays)) {
      if (!o.checkbox.checked || !p) continue;
      if (o.data && o.data.key === p.key) continue;
      if (o.inflight === p.key) continue;
      fetchOverlay(name, o, p.key);
    }
    paintOverlays();
  }

  function fetchOverlay(name, o, key) {
    if (o.inflight !== null) { o.pending = true; return; }
    o.inflight = key;
    fetch(api(`${o.route}?${key}`))
      .then(async (r) => {
        if (!r.ok) throw new Error(await errorText(r));
        return r.json();
      })
      .then((data) => { data.key = key; o.data = data; })
      .catch((err) => { o.data = { key, error: err.message }; setStatus(`${name}: ${err.message}`, true); })
      .finally(() => {
        o.inflight = null;
        const again = o.pending; o.pending = false;
        if (again || (state.current && state.current.key !== key)) drawPatternOverlay();
        else paintOverlays();
      });
  }

  function paintOverlays() {
    const c = el.patternOverlay, ctx = c.getContext("2d");
    ctx.clearRect(0, 0, c.width, c.height);
    const p = state.current;
    if (!p) return;
    const ratio = window.devicePixelRatio || 1;
    ctx.font = `${11 * ratio}px system-ui, sans-serif`;
    ctx.textBaseline = "middle";
    ctx.textAlign = "center";
    const drawn = [], placed = [], labels = [];
    for (const [name, o] of Object.entries(overlays)) {
      if (!o.checkbox.checked || !o.data || o.data.key !== p.key || !o.data.bands) continue;
      const n = o.data.bands.length;
      // pixel coordinates of the pattern the overlay was made for (simulated lines: the unbinned detector)
      const [oh, ow] = o.data.shape;
      const X = (x) => ((x + 0.5) / ow) * c.width, Y = (y) => ((y + 0.5) / oh) * c.height;
      o.data.bands.forEach((b, i) => {
        ctx.strokeStyle = o.colour;
        ctx.lineWidth = (name === "bands" ? 1.5 : 1.2) * ratio;
        ctx.setLineDash(name === "lines" ? [6 * ratio, 4 * ratio] : []);
        ctx.beginPath();
        ctx.moveTo(X(b.x0), Y(b.y0));
        ctx.lineTo(X(b.x1), Y(b.y1));
        ctx.stroke();
        const label = name === "bands" ? String(i + 1) : b.hkl;
        if (label) labels.push({ label, b, X, Y, colour: o.colour, tries: name === "bands" ? [0.06, 0.94, 0.2, 0.8] : [0.5, 0.3, 0.7, 0.15, 0.85, 0.4, 0.6] });
      });
      drawn.push(`${n} ${name === "bands" ? "detected bands" : "simulated band lines"}${o.data.note ? ` (${o.data.note})` : ""}`);
    }
    // labels over all lines, each where it covers no earlier label, on a dark backing
    ctx.setLineDash([]);
    for (const { label, b, X, Y, colour, tries } of labels) {
      const wText = ctx.measureText(label).width + 6 * ratio, hText = 16 * ratio;
      for (const t of tries) {
        const lx = X(b.x0 + t * (b.x1 - b.x0)), ly = Y(b.y0 + t * (b.y1 - b.y0));
        const box = [lx - wText / 2, ly - hText / 2, wText, hText];
        if (placed.some((q) => box[0] < q[0] + q[2] && q[0] < box[0] + box[2] && box[1] < q[1] + q[3] && q[1] < box[1] + box[3])) continue;
        placed.push(box);
        ctx.fillStyle = "rgba(0,0,0,0.6)";
        ctx.fillRect(box[0], box[1], box[2], box[3]);
        ctx.fillStyle = colour;
        ctx.fillText(label, lx, ly);
        break;
      }
    }
    c.dataset.drawn = drawn.join(", ");
    c.dataset.key = p.key;
  }

  function onPatternMove(event) {
    const p = state.current;
    if (!p) return;
    const rect = el.pattern.getBoundingClientRect();
    const x = Math.floor(((event.clientX - rect.left) / rect.width) * p.w);
    const y = Math.floor(((event.clientY - rect.top) / rect.height) * p.h);
    if (x < 0 || y < 0 || x >= p.w || y >= p.h) return;
    el.readout.textContent = `pixel x ${x}, y ${y}: ${fmt(p.data[y * p.w + x])}`;
  }

  // ------------------------------------------------------ pattern matching
  // For the point of the pattern shown (with --master-pattern): experiment, simulation and their difference
  // (PNGs made by the server) and the NCC (JSON). One point at a time; while one is fetched only the latest
  // point wanted is remembered, and the three images replace the old ones together.
  const MATCH_PANELS = ["experiment", "simulation", "difference"];
  const match = { inflight: false, wanted: null, shown: null, urls: [], data: null };

  function updateMatch(p) {
    if (!state.info.match) return;
    match.wanted = { row: p.row, col: p.col };
    if (!match.inflight) nextMatch();
  }

  async function nextMatch() {
    const p = match.wanted;
    match.wanted = null;
    if (!p) return;
    const key = `row=${p.row}&col=${p.col}`;
    if (key === match.shown) return;
    match.inflight = true;
    try {
      const r = await fetch(api(`/api/match?${key}`));
      if (!r.ok) throw new Error(await errorText(r));
      const data = await r.json();
      let urls = [];
      if (data.ncc !== null) {
        urls = await Promise.all(MATCH_PANELS.map(async (name) => {
          const response = await fetch(api(`/api/match.png?${key}&panel=${name}`));
          if (!response.ok) throw new Error(`${name}: ${await errorText(response)}`);
          return URL.createObjectURL(await response.blob());
        }));
      }
      await showMatch(p, key, data, urls);
    } catch (err) {
      setStatus(`pattern matching at row ${p.row}, col ${p.col}: ${err.message}`, true);
    } finally {
      match.inflight = false;
      if (match.wanted) nextMatch();
    }
  }

  async function showMatch(p, key, data, urls) {
    const width = `${Math.round(Math.max(120, Math.min(260, ((window.innerWidth || 1280) - 120) / 3)))}px`;
    const images = MATCH_PANELS.map((name) => $(`match-${name}`));
    images.forEach((img, i) => {
      if (urls[i]) { img.src = urls[i]; img.style.width = width; img.hidden = false; }
      else { img.removeAttribute("src"); img.hidden = true; }
    });
    await Promise.all(images.filter((img) => !img.hidden).map((img) => img.decode()));
    for (const old of match.urls) URL.revokeObjectURL(old);
    match.urls = urls;
    match.shown = key;
    match.data = data;
    const panel = el.matchPanel;
    panel.dataset.row = p.row;
    panel.dataset.col = p.col;
    panel.dataset.ncc = data.ncc === null ? "" : String(data.ncc);
    const m = state.info.match;
    if (data.ncc === null) {
      el.matchNcc.textContent = "NCC —";
      el.matchInfo.textContent = `row ${p.row}, col ${p.col}: ${data.note}`;
    } else {
      el.matchNcc.textContent = `NCC ${data.ncc.toFixed(4)}`;
      const euler = data.euler_deg.map((v) => `${v.toFixed(2)}°`).join(", ");
      const pc = data.pc_bruker.map((v) => v.toFixed(4)).join(", ");
      el.matchInfo.textContent =
        `row ${p.row}, col ${p.col} · ${data.phase} · Euler ${euler} · PC (Bruker) ${pc} from the ${data.pc_from} · ` +
        `${data.shape[0]} × ${data.shape[1]}, ${data.mask_pixels} pixels compared (${m.mask} mask), both normalised to mean 0, ` +
        `standard deviation 1 · RMS of the difference ${data.difference_rms.toFixed(3)} · master pattern ${m.master_pattern}, ${fmt(m.kv)} kV${m.master_phase ? `, phase ${m.master_phase}` : ""}`;
    }
    panel.dataset.loaded = "1";
  }

  // ----------------------------------------------------------- processing
  // The parameters that made the pattern shown (from the server: every value actually used).
  function describeProcessing() {
    const sig = signalInfo();
    const p = state.current;
    const items = [["pattern", sig.label]];
    if (p && p.info) {
      const info = p.info;
      items.push(["neighbours averaged", info.npa ? `n = ${info.npa} (window ${info.npa_window})` : "none"]);
      if (info.nlpar) items.push(["non-local averaging (NLPAR)", `search radius ${info.nlpar}, λ ${fmt(info.nlpar_lambda, 4)} (${info.nlpar_lambda_choice})`]);
      if (info.static_background) items.push(["static background", `${info.static_background} (the file's static background)`]);
      // the form shows the chosen values; list what the pipeline resolved and the rest
      const shown = new Set(Object.keys(sig.options || {}).concat(["npa", "nlpar", "nlpar_lambda", "nlpar_search_radius", "nlpar_lambda_used", "nlpar_lambda_choice"]));
      if (info.processing) for (const [k, v] of Object.entries(info.processing)) {
        if (!shown.has(k)) items.push([k.replaceAll("_", " "), typeof v === "object" && v !== null ? JSON.stringify(v) : String(v)]);
      }
    }
    if (sig.parameters) for (const [k, v] of Object.entries(sig.parameters)) items.push([`stored: ${k}`, typeof v === "object" ? JSON.stringify(v) : String(v)]);
    el.processing.replaceChildren();
    for (const [k, v] of items) {
      const dt = document.createElement("dt"), dd = document.createElement("dd");
      dt.textContent = k; dd.textContent = v;
      el.processing.append(dt, dd);
    }
  }

  function refresh() {
    const p = state.hover && hasPattern(state.hover) ? state.hover : state.pinned || (state.current && { row: state.current.row, col: state.current.col });
    if (p) show(p);
  }

  // ------------------------------------------------------------------ start
  async function start() {
    const response = await fetch(api("/api/info"));
    if (!response.ok) { setStatus(`info: ${await errorText(response)}`, true); return; }
    const info = await response.json();
    state.info = info;
    el.file.textContent = `${info.file} · ${info.nav_shape[0]} × ${info.nav_shape[1]} points · step ${fmt(info.step_um[0])} × ${fmt(info.step_um[1])} µm · ${info.pattern_shape[0]} × ${info.pattern_shape[1]} ${info.dtype} patterns`;
    for (const m of info.maps) el.mapSelect.add(new Option(m.label, m.name));
    for (const s of info.signals) el.signal.add(new Option(s.label, s.name));
    el.npa.max = String(info.max_npa);
    el.npaLabel.hidden = info.max_npa === 0;
    el.nlpar.max = String(info.max_nlpar || 0);
    el.nlparLabel.hidden = el.lambdaLabel.hidden = !info.max_nlpar;
    layoutMap();
    drawMapOverlay();
    buildOptions();
    describeProcessing();
    el.map.addEventListener("mousemove", onMapMove);
    el.map.addEventListener("mouseleave", onMapLeave);
    el.map.addEventListener("click", (event) => { const p = pointAt(event); if (p && hasPattern(p)) { el.map.focus(); pin(p); } });
    document.addEventListener("keydown", onKey);
    window.addEventListener("resize", () => {
      layoutMap();
      drawMapOverlay();
      if (el.pattern.width > 0 && state.current) { layoutPattern(); paintOverlays(); }
    });
    el.pattern.addEventListener("mousemove", onPatternMove);
    el.mapSelect.addEventListener("change", () => loadMap(el.mapSelect.value));
    el.signal.addEventListener("change", () => { buildOptions(); refresh(); });
    el.npa.addEventListener("input", () => { el.npaValue.textContent = el.npa.value; refresh(); });
    el.nlpar.addEventListener("input", () => { el.npa.disabled = nlparRadius() > 0; refresh(); });
    el.lambda.addEventListener("change", () => { if (nlparRadius()) refresh(); });
    for (const o of Object.values(overlays)) o.checkbox.addEventListener("change", drawPatternOverlay);
    const overlayNames = info.overlays || [];
    $("bands-label").hidden = !overlayNames.includes("bands");
    $("lines-label").hidden = !overlayNames.includes("lines");
    $("overlay-controls").hidden = overlayNames.length === 0;
    el.matchPanel.hidden = !info.match;
    await loadMap(info.maps[0].name);
    // first pattern: the first point that has one
    const [rows, cols] = info.nav_shape;
    for (let i = 0; i < rows * cols; i++) {
      const p = { row: Math.floor(i / cols), col: i % cols };
      if (hasPattern(p)) { show(p); break; }
    }
    document.body.dataset.ready = "1";
  }

  window.kikuchiExplorer = {
    state,
    show: (row, col) => show({ row, col }),
    pin: (row, col) => pin({ row, col }),
    currentPattern: () => state.current && {
      row: state.current.row, col: state.current.col, npa: state.current.npa, signal: state.current.signal,
      dtype: state.current.dtype, h: state.current.h, w: state.current.w, checksum: state.current.checksum,
      bytes: toBase64(state.current.data),  // little-endian pixels (compact to hand to tests)
    },
    latencies: () => state.latencies.slice(),
    match: () => match.data,
    cached: (row, col) => state.cache.has(patternParams({ row, col })),
  };
  start().catch((err) => setStatus(`explorer failed to start: ${err.message}`, true));
})();
