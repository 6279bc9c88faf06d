// The live map: draws the world from the embedded TopoJSON, then follows
// /api/v1/stream (Server-Sent Events) and keeps one bubble per country.
// No libraries: the TopoJSON decoding and the projection are below.
'use strict';

const SVG_NS = 'http://www.w3.org/2000/svg';
const SCALE = 150;        // projected units per radian-ish; sets the viewBox
const SOUTH_EDGE = -58;   // latitude where the map is cut (no Antarctica)
const MAX_RADIUS = 24;    // bubble radius of the busiest country, in units
const MIN_RADIUS = 3;
const ANTARCTICA = '010';  // ISO numeric id in world-atlas

const $ = (id) => document.getElementById(id);
const numbers = new Intl.NumberFormat();
const count = (n, one, many) => `${numbers.format(n)} ${n === 1 ? one : many}`;

// Equal Earth projection (Šavrič, Patterson and Jenny, 2018): equal-area,
// so bubble placement does not inflate the far north. Returns SVG units,
// y pointing down.
const A1 = 1.340264, A2 = -0.081106, A3 = 0.000893, A4 = 0.003796;
const M = Math.sqrt(3) / 2;
function project(lon, lat) {
  const lambda = lon * Math.PI / 180;
  const theta = Math.asin(M * Math.sin(lat * Math.PI / 180));
  const t2 = theta * theta, t6 = t2 * t2 * t2;
  const x = lambda * Math.cos(theta) / (M * (A1 + 3 * A2 * t2 + t6 * (7 * A3 + 9 * A4 * t2)));
  const y = theta * (A1 + A2 * t2 + t6 * (A3 + A4 * t2));
  return [x * SCALE, -y * SCALE];
}

// TopoJSON arcs are quantized and delta-encoded; this gives [lon, lat].
function decodeArcs(topology) {
  const [sx, sy] = topology.transform.scale;
  const [tx, ty] = topology.transform.translate;
  return topology.arcs.map((arc) => {
    let x = 0, y = 0;
    return arc.map(([dx, dy]) => { x += dx; y += dy; return [x * sx + tx, y * sy + ty]; });
  });
}

// A ring is a list of arc indexes; ~i is arc i reversed. Consecutive arcs
// share their joining point, so it is kept once.
function ringPoints(arcs, indexes) {
  const points = [];
  for (const index of indexes) {
    const arc = index >= 0 ? arcs[index] : arcs[~index].slice().reverse();
    for (let i = points.length ? 1 : 0; i < arc.length; i++) points.push(arc[i]);
  }
  return points;
}

// world-atlas shapes are spherical: Russia and Fiji jump from 180 to -180.
// Shifting by 360 after each jump makes the ring continuous; the parts past
// ±180 are then drawn a second time, shifted, and clipped to the globe.
function unwrap(points) {
  const out = [points[0].slice()];
  for (let i = 1; i < points.length; i++) {
    let [lon, lat] = points[i];
    const previous = out[out.length - 1][0];
    while (lon - previous > 180) lon -= 360;
    while (lon - previous < -180) lon += 360;
    out.push([lon, lat]);
  }
  return out;
}

function pathOf(points, shift) {
  return 'M' + points.map(([lon, lat]) => {
    const [x, y] = project(lon + shift, lat);
    return x.toFixed(1) + ',' + y.toFixed(1);
  }).join('L') + 'Z';
}

function svg(name, attributes) {
  const element = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
  return element;
}

function drawMap(topology) {
  const map = $('map');
  const [west] = project(-180, 0);
  const [east] = project(180, 0);
  const [, north] = project(0, 90);
  const [, south] = project(0, SOUTH_EDGE);
  map.setAttribute('viewBox', [west, north, east - west, south - north].map((v) => v.toFixed(1)).join(' '));

  // The globe's outline: the two edge meridians.
  const edge = [];
  for (let lat = -90; lat <= 90; lat += 2) edge.push([-180, lat]);
  for (let lat = 90; lat >= -90; lat -= 2) edge.push([180, lat]);
  const outline = pathOf(edge, 0);
  const defs = svg('defs', {});
  const clip = svg('clipPath', { id: 'globe' });
  clip.append(svg('path', { d: outline }));
  defs.append(clip);
  map.prepend(defs);
  const land = $('land');
  land.setAttribute('clip-path', 'url(#globe)');
  land.append(svg('path', { d: outline, class: 'sphere' }));

  const arcs = decodeArcs(topology);
  for (const geometry of topology.objects.countries.geometries) {
    if (geometry.id === ANTARCTICA) continue;
    const polygons = geometry.type === 'MultiPolygon' ? geometry.arcs
      : geometry.type === 'Polygon' ? [geometry.arcs] : [];
    let d = '';
    for (const polygon of polygons) {
      for (const indexes of polygon) {
        const points = unwrap(ringPoints(arcs, indexes));
        const lons = points.map((p) => p[0]);
        d += pathOf(points, 0);
        if (Math.max(...lons) > 180) d += pathOf(points, -360);
        if (Math.min(...lons) < -180) d += pathOf(points, 360);
      }
    }
    land.append(svg('path', { d, class: 'country' }));
  }
}

// ---- live state ----------------------------------------------------------

let centroids = null;   // alpha-2 -> [lon, lat]
let latest = null;      // the last state received, drawn once the map is in
const bubbles = new Map();  // alpha-2 -> circle

function isCountry(id) { return /^[A-Z]{2}$/.test(id); }

function showTooltip(circle) {
  const info = circle.info;
  const tooltip = $('tooltip');
  tooltip.replaceChildren();
  const name = document.createElement('strong');
  name.textContent = info.name;
  tooltip.append(name,
    count(info.connections, 'connection', 'connections'), document.createElement('br'),
    count(info.unique_addresses, 'unique address', 'unique addresses'),
    document.createElement('br'),
    `${info.percent.toFixed(1)}% of all`);
  tooltip.hidden = false;
  // Centred above the bubble, but kept inside the map so that it never
  // widens the page (phones).
  const box = circle.getBoundingClientRect();
  const frame = tooltip.parentElement.getBoundingClientRect();
  const half = tooltip.offsetWidth / 2;
  const centre = box.left + box.width / 2 - frame.left;
  tooltip.style.left = `${Math.max(half, Math.min(frame.width - half, centre))}px`;
  tooltip.style.top = `${box.top - frame.top}px`;
}

function hideTooltip() { $('tooltip').hidden = true; }

function newBubble(id) {
  const [x, y] = project(...centroids[id]);
  const circle = svg('circle', {
    class: 'bubble', cx: x.toFixed(1), cy: y.toFixed(1), r: 0, tabindex: 0, 'data-country': id,
  });
  circle.addEventListener('pointerenter', () => showTooltip(circle));
  circle.addEventListener('pointerdown', () => showTooltip(circle));
  circle.addEventListener('focus', () => showTooltip(circle));
  circle.addEventListener('pointerleave', hideTooltip);
  circle.addEventListener('blur', hideTooltip);
  return circle;
}

function renderBubbles(countries) {
  const placed = countries.filter((c) => centroids[c.id] && c.connections > 0);
  const busiest = Math.max(1, ...placed.map((c) => c.connections));
  const layer = $('bubbles');
  const keep = new Set();
  for (const country of placed) {
    let circle = bubbles.get(country.id);
    if (!circle) {
      circle = newBubble(country.id);
      bubbles.set(country.id, circle);
    }
    const before = Number(circle.dataset.count || 0);
    circle.info = country;
    circle.dataset.count = String(country.connections);
    // Area, not radius, proportional to connections.
    const r = Math.max(MIN_RADIUS, MAX_RADIUS * Math.sqrt(country.connections / busiest));
    circle.setAttribute('r', r.toFixed(2));
    circle.setAttribute('aria-label',
      `${country.name}: ${count(country.connections, 'connection', 'connections')}`);
    if (country.connections > before) {
      circle.classList.remove('pulse');
      void circle.getBBox();  // restarts the animation
      circle.classList.add('pulse');
    }
    keep.add(country.id);
  }
  for (const [id, circle] of bubbles) {
    if (!keep.has(id)) { circle.remove(); bubbles.delete(id); }
  }
  // Big bubbles first, so small ones stay on top and hoverable.
  placed.sort((a, b) => b.connections - a.connections)
    .forEach((country) => layer.append(bubbles.get(country.id)));
}

// Fills a filter with [value, label] options after "all"; a selected value
// that is not listed (nothing counted yet) is kept as an option of its own.
function renderChoices(select, all, choices, selected) {
  const options = [['', all], ...choices];
  if (selected && !choices.some(([value]) => value === selected)) {
    options.push([selected, selected]);
  }
  const text = JSON.stringify(options);
  if (select.dataset.options === text) return;  // keep it stable while open
  select.dataset.options = text;
  select.replaceChildren(...options.map(([value, label]) => new Option(label, value)));
  select.value = selected;
}

function renderPorts(ports, selected) {
  renderChoices($('port'), 'all ports',
    ports.map((p) => [String(p.port), `${p.port} (${numbers.format(p.connections)})`]), selected);
}

// Busiest first, as the API lists them.
function renderServices(services, selected) {
  renderChoices($('service'), 'all services',
    services.map((s) => [s.service, `${s.service} (${numbers.format(s.connections)})`]),
    selected);
}

function cell(row, text) { row.insertCell().textContent = text; }

function render(state) {
  latest = state;
  if (!centroids) return;
  const port = state.port === null ? '' : String(state.port);
  renderBubbles(state.countries);
  renderPorts(state.ports, port);
  renderServices(state.services, state.service ?? '');
  $('total-connections').textContent = numbers.format(state.connections);
  $('total-addresses').textContent = numbers.format(state.unique_addresses);
  $('total-countries').textContent =
    numbers.format(state.countries.filter((c) => isCountry(c.id)).length);
  $('source').textContent = state.source;

  const rows = $('top').tBodies[0];
  rows.replaceChildren();
  for (const country of state.countries.slice(0, 10)) {
    const row = rows.insertRow();
    cell(row, country.name);
    cell(row, numbers.format(country.connections));
    cell(row, `${country.percent.toFixed(1)}%`);
  }

  $('feed').replaceChildren(...state.recent.map((r) => {
    const item = document.createElement('li');
    const time = document.createElement('time');
    time.dateTime = r.time;
    time.textContent = new Date(r.time).toLocaleTimeString();
    const what = document.createElement('span');
    what.textContent = r.connections > 1 ? `${r.name} ×${r.connections}` : r.name;
    const where = document.createElement('span');
    where.textContent = `:${r.port}`;
    const address = document.createElement('span');
    address.className = 'address';
    address.textContent = r.address ?? 'address not recorded';
    const service = document.createElement('span');
    service.className = 'service';
    service.textContent = r.service;
    service.title = r.service;
    item.dataset.service = r.service;
    item.append(time, what, where, address, service);
    return item;
  }));
  document.body.dataset.version = String(state.version);
}

function setStatus(kind, text) {
  const status = $('status');
  status.className = `status ${kind}`;
  status.textContent = text;
}

// The filters as a query string: '' for all, else ?port=N&service=NAME.
function query() {
  const params = new URLSearchParams();
  for (const name of ['port', 'service']) {
    if ($(name).value) params.set(name, $(name).value);
  }
  const text = params.toString();
  return text ? `?${text}` : '';
}

// EventSource reconnects by itself (the server asks for 2 s) after the
// exporter restarts; a connection it gives up on is reopened here.
let source = null;
let retry = null;
let generation = 0;  // bumped by connect(), so a stale poll loop stops
function connect() {
  generation += 1;
  clearTimeout(retry);
  if (source) source.close();
  source = new EventSource('/api/v1/stream' + query());
  source.onmessage = (event) => { setStatus('live', 'live'); render(JSON.parse(event.data)); };
  // Every stream slot is taken (a large audience): poll for a while instead.
  source.addEventListener('busy', () => { source.close(); poll(40); });
  source.addEventListener('failure', (event) => {
    setStatus('down', JSON.parse(event.data).error);
    source.close();
  });
  source.onerror = () => {
    setStatus('down', 'reconnecting…');
    if (source.readyState === EventSource.CLOSED) retry = setTimeout(connect, 2000);
  };
}

// Polls /api/v1/state `rounds` times, 1.5 s apart, then tries the stream.
function poll(rounds, mine = generation) {
  if (mine !== generation) return;
  fetch('/api/v1/state' + query())
    .then((response) => (response.ok ? response.json()
      : Promise.reject(new Error(`HTTP ${response.status}`))))
    .then((state) => {
      if (mine !== generation) return;
      setStatus('live', 'live (polling)');
      render(state);
    })
    .catch(() => setStatus('down', 'reconnecting…'))
    .finally(() => {
      if (mine === generation) {
        retry = setTimeout(() => (rounds > 1 ? poll(rounds - 1, mine) : connect()), 1500);
      }
    });
}

function start() {
  // The bubble moves when the layout changes; its tooltip would not.
  window.addEventListener('resize', hideTooltip);
  const initial = new URLSearchParams(location.search);
  renderPorts([], initial.get('port') || '');
  renderServices([], initial.get('service') || '');
  for (const name of ['port', 'service']) {
    $(name).addEventListener('change', () => {
      history.replaceState(null, '', query() || location.pathname);
      connect();
    });
  }
  connect();
  Promise.all(['countries-110m.json', 'centroids.json'].map((name) =>
    fetch(`/live_map/${name}`).then((response) => {
      if (!response.ok) throw new Error(`${name}: HTTP ${response.status}`);
      return response.json();
    })))
    .then(([topology, points]) => {
      drawMap(topology);
      centroids = points;
      if (latest) render(latest);
    })
    .catch((error) => setStatus('down', `map data failed to load: ${error.message}`));
}

start();
