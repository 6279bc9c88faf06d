// The live map: draws the world from the embedded TopoJSON, then follows
// /api/v1/stream (Server-Sent Events) and shows, for the layer chosen
// (accepted connections, traffic in bytes or failed connections), one
// bubble per country or the countries filled by a colour scale. Every layer
// comes from the same stream message, as do the top peers and the word
// cloud's words; a country's detail asks /api/v1/networks for its top
// networks.
// No libraries: the TopoJSON decoding and the projection are below.
'use strict';

const SVG_NS = 'http://www.w3.org/2000/svg';
const SCALE = 150;        // projected units per radian-ish; sets the viewBox
// Latitude where the map is cut: below every coast but Antarctica's (its
// peninsula reaches -63), at the Antarctic Treaty's boundary. Antarctica
// would take a fifth of the map's height for almost no clients; the
// southern tips (Tierra del Fuego, -55.6; Stewart Island, -47.3; the South
// Sandwich Islands, -59.5) stay inside.
const SOUTH_EDGE = -60;
const MAX_RADIUS = 24;    // bubble radius of the busiest country, in units
const MIN_RADIUS = 3;
const ISLAND_RADIUS = 3.5;  // dot of a country too small for the shapes
const ANTARCTICA = 'AQ';

const $ = (id) => document.getElementById(id);
const numbers = new Intl.NumberFormat();
const count = (n, one, many) => `${numbers.format(n)} ${n === 1 ? one : many}`;
const significant = new Intl.NumberFormat(undefined, { maximumSignificantDigits: 3 });
const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];
// Bytes in binary units, three significant digits: "700 B", "1.5 MiB".
function bytes(n) {
  let unit = 0;
  while (n >= 1024 && unit < BYTE_UNITS.length - 1) { n /= 1024; unit += 1; }
  return `${unit === 0 ? numbers.format(n) : significant.format(n)} ${BYTE_UNITS[unit]}`;
}
// part of whole in percent, one decimal.
const share = (part, whole) => (whole > 0 ? (100 * part) / whole : 0).toFixed(1);

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

// alpha-2 -> the country's land path, for the filled view.
const shapes = new Map();

// Draws the globe and one path per country. `points` (centroids.json) gives
// each alpha-2 code its world-atlas shapes: [lon, lat, key, ...], a key
// being a shape's id (ISO numeric) or, without one, its name.
function drawMap(topology, points) {
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

  const codeOf = new Map();
  for (const [code, [, , ...keys]] of Object.entries(points)) {
    for (const key of keys) codeOf.set(key, code);
  }
  const arcs = decodeArcs(topology);
  const outlines = new Map();  // alpha-2 (or '' for none) -> path data
  for (const geometry of topology.objects.countries.geometries) {
    const code = codeOf.get(geometry.id ?? geometry.properties.name) ?? '';
    if (code === ANTARCTICA) continue;  // below SOUTH_EDGE
    const polygons = geometry.type === 'MultiPolygon' ? geometry.arcs
      : geometry.type === 'Polygon' ? [geometry.arcs] : [];
    let d = outlines.get(code) ?? '';
    for (const polygon of polygons) {
      for (const indexes of polygon) {
        const ring = unwrap(ringPoints(arcs, indexes));
        const lons = ring.map((p) => p[0]);
        d += pathOf(ring, 0);
        if (Math.max(...lons) > 180) d += pathOf(ring, -360);
        if (Math.min(...lons) < -180) d += pathOf(ring, 360);
      }
    }
    outlines.set(code, d);
  }
  for (const [code, d] of outlines) {
    const path = svg('path', { d, class: 'country' });
    if (code) {
      path.dataset.country = code;
      addPointerHandlers(path);
      shapes.set(code, path);
    }
    land.append(path);
  }
}

// ---- live state ----------------------------------------------------------

let centroids = null;   // alpha-2 -> [lon, lat, shape keys...]
let latest = null;      // the last state received, drawn once the map is in
const bubbles = new Map();  // alpha-2 -> circle (bubbles view)
const islands = new Map();  // alpha-2 -> circle (filled view, no shape)

function isCountry(id) { return /^[A-Z]{2}$/.test(id); }

// Where a country's bubble or dot goes; Antarctica's centroid is below the
// map's edge, so it sits on the edge.
function placeOf(id) {
  const [lon, lat] = centroids[id];
  return project(lon, Math.max(lat, SOUTH_EDGE + 2));
}

// What each layer draws. rows(state) gives one row per country, in the
// order of its table: {id, name, count, ...}; count sizes the bubble or
// colours the country and is its data-count. share(row, rows) is the
// table's Share column; lines(row, rows) the tooltip under the name;
// label(row) the bubble's accessible name; unit the colour legend's title;
// ramp the filled view's colours, from the fewest to the most.
const LAYERS = {
  accepted: {
    title: 'Accepted connections by client country',
    top: 'Top countries',
    column: 'Conn.',
    unit: 'Connections',
    rows: (state) => state.countries.map((c) => ({ ...c, count: c.connections })),
    format: (n) => numbers.format(n),
    share: (row) => row.percent.toFixed(1),
    lines: (row) => [count(row.connections, 'connection', 'connections'),
      count(row.unique_addresses, 'unique address', 'unique addresses'),
      `${row.percent.toFixed(1)}% of all`],
    label: (row) => count(row.connections, 'connection', 'connections'),
    ramp: ['#7a5200', '#ffb000', '#ffe6a0'],
  },
  traffic: {
    title: 'Traffic (bytes received and sent) by client country',
    top: 'Top countries by traffic',
    column: 'Bytes',
    unit: 'Bytes received and sent',
    // Most bytes first; ties keep the API's order (most connections first).
    rows: (state) => state.countries
      .map((c) => ({ ...c, count: c.received_bytes + c.sent_bytes }))
      .filter((row) => row.count > 0)
      .sort((a, b) => b.count - a.count),
    format: bytes,
    share: (row, rows) => share(row.count, total(rows)),
    lines: (row, rows) => [`${bytes(row.received_bytes)} received`, `${bytes(row.sent_bytes)} sent`,
      `${share(row.count, total(rows))}% of all traffic`],
    label: (row) => `${bytes(row.received_bytes)} received, ${bytes(row.sent_bytes)} sent`,
    ramp: ['#14536b', '#4cc9f0', '#d2f3ff'],
  },
  failed: {
    title: 'Refused and failed connections by client country',
    top: 'Top countries by failed connections',
    column: 'Failed',
    unit: 'Failed connections',
    rows: (state) => (state.failures ?? []).map((f) => ({ ...f, count: f.failed_connections })),
    format: (n) => numbers.format(n),
    share: (row, rows) => share(row.count, total(rows)),
    lines: (row, rows) => [count(row.count, 'failed connection', 'failed connections'),
      ...Object.entries(row.reasons).map(([reason, n]) => `${numbers.format(n)} ${reason}`),
      `${share(row.count, total(rows))}% of all failures`],
    label: (row) => `${count(row.count, 'failed connection', 'failed connections')} (${
      Object.entries(row.reasons).map(([reason, n]) => `${numbers.format(n)} ${reason}`)
        .join(', ')})`,
    ramp: ['#7a1f3d', '#ff5c8a', '#ffd3e0'],
  },
};

function total(rows) { return rows.reduce((sum, row) => sum + row.count, 0); }

// The layer shown: "accepted" unless ?layer= names another; the view:
// "bubbles" unless ?view=filled.
let layer = 'accepted';
const VIEWS = ['bubbles', 'filled'];
let view = 'bubbles';
let drawn = '';  // the view and layer of the last drawing: no pulse on a switch

// ---- the filled view's colour scale ---------------------------------------

// A log scale, whose classes start at round numbers: counts span 1 to
// millions, and a country with 10 times the connections is one class up
// whatever the others do (a quantile scale would recolour everyone as one
// country grows). The finest ladder that gives at most MAX_CLASSES classes
// from 1 to the largest count is used: [base, steps] gives steps × base^k.
const MAX_CLASSES = 7;
const COUNT_LADDERS = [[10, [1, 2, 5]], [10, [1]], [100, [1]], [1000, [1]]];
const BYTE_LADDERS = [[4, [1]], [32, [1]], [1024, [1]], [1024 * 1024, [1]]];

// The lower bounds of the classes: 1 first, ascending.
function classBounds(largest, ladders) {
  let bounds = [1];
  for (const [base, steps] of ladders) {
    bounds = [];
    for (let power = 1; power <= largest; power *= base) {
      for (const step of steps) if (step * power <= largest) bounds.push(step * power);
    }
    if (bounds.length <= MAX_CLASSES) break;
  }
  return bounds;
}

// '#rrggbb' at t (0 to 1) along a ramp of colours, linear in RGB.
function rampColour(ramp, t) {
  const position = Math.min(Math.max(t, 0), 1) * (ramp.length - 1);
  const i = Math.min(Math.floor(position), ramp.length - 2);
  const f = position - i;
  const [a, b] = [ramp[i], ramp[i + 1]].map((hex) =>
    [1, 3, 5].map((k) => parseInt(hex.slice(k, k + 2), 16)));
  return '#' + a.map((v, k) => Math.round(v + (b[k] - v) * f).toString(16).padStart(2, '0'))
    .join('');
}

// The scale for `largest`: its classes [{from, to, colour}] (none when
// largest is 0) and colourOf(n). A class of counts ends one below the next
// one's start ("2–4", "5–9"); a class of bytes where the next one starts
// ("1 KiB–32 KiB", "32 KiB–1 MiB"), which reads better than "1,020 KiB".
function colourScale(shown, largest) {
  const inBytes = shown.format === bytes;
  const bounds = largest < 1 ? [] : classBounds(largest, inBytes ? BYTE_LADDERS : COUNT_LADDERS);
  const colours = bounds.map((_, i) =>
    rampColour(shown.ramp, bounds.length === 1 ? 1 : i / (bounds.length - 1)));
  const classes = bounds.map((from, i) => ({
    from,
    to: i + 1 < bounds.length ? bounds[i + 1] - (inBytes ? 0 : 1) : largest,
    colour: colours[i],
  }));
  const colourOf = (n) => {
    let i = 0;
    while (i + 1 < bounds.length && bounds[i + 1] <= n) i += 1;
    return colours[i];
  };
  return { classes, colourOf };
}

// The legend: the scale's title, a swatch for none, one per class.
function renderLegend(shown, classes) {
  const legend = $('legend');
  legend.hidden = view !== 'filled';
  if (legend.hidden) return;
  $('legend-title').textContent = `${shown.unit}, log scale`;
  const item = (swatchClass, colour, text) => {
    const li = document.createElement('li');
    const swatch = document.createElement('span');
    swatch.className = swatchClass;
    if (colour) swatch.style.background = colour;
    li.append(swatch, text);
    return li;
  };
  $('legend-classes').replaceChildren(
    item('swatch zero', null, shown.format(0)),
    ...classes.map(({ from, to, colour }) => item('swatch', colour,
      to > from ? `${shown.format(from)}–${shown.format(to)}` : shown.format(from))));
}

// ---- tooltip and detail ---------------------------------------------------

// Where a country's tooltip goes, in the map frame's pixels: [x, top,
// bottom] of its bubble or dot, or of its centroid on a filled shape.
function anchorOf(element, frame) {
  if (element.tagName === 'circle') {
    const box = element.getBoundingClientRect();
    return [box.left + box.width / 2 - frame.left, box.top - frame.top, box.bottom - frame.top];
  }
  const [x, y] = placeOf(element.dataset.country);
  const point = new DOMPoint(x, y).matrixTransform($('map').getScreenCTM());
  return [point.x - frame.left, point.y - frame.top, point.y - frame.top];
}

function showTooltip(element) {
  if (!element.info || element.dataset.count === undefined) return;
  const { row, rows } = element.info;
  const tooltip = $('tooltip');
  tooltip.replaceChildren();
  tooltip.dataset.layer = element.dataset.layer;
  const name = document.createElement('strong');
  name.textContent = row.name;
  tooltip.append(name);
  LAYERS[element.dataset.layer].lines(row, rows).forEach((line, i) => {
    if (i > 0) tooltip.append(document.createElement('br'));
    tooltip.append(line);
  });
  tooltip.hidden = false;
  // Centred above the country (below it when the map has no room above),
  // and kept inside the map so that it never widens the page (phones).
  const frame = tooltip.parentElement.getBoundingClientRect();
  const [centre, top, bottom] = anchorOf(element, frame);
  const half = tooltip.offsetWidth / 2;
  const below = top < tooltip.offsetHeight + 14;
  tooltip.classList.toggle('under', below);
  tooltip.style.left = `${Math.max(half, Math.min(frame.width - half, centre))}px`;
  tooltip.style.top = `${below ? bottom : top}px`;
}

function hideTooltip() { $('tooltip').hidden = true; }

// Hover, tap and focus show the tooltip; click, Enter or Space (handled
// once for the whole map in start()) open the country's detail.
function addPointerHandlers(element) {
  element.addEventListener('pointerenter', () => showTooltip(element));
  element.addEventListener('pointerdown', () => showTooltip(element));
  element.addEventListener('focus', () => showTooltip(element));
  element.addEventListener('pointerleave', hideTooltip);
  element.addEventListener('blur', hideTooltip);
}

// Gives element (bubble, filled shape or dot) the row's data, accessible
// name and focus; pulses it when its count rose on the same layer.
function mark(element, row, rows) {
  const before = element.dataset.layer === undefined ? (drawn === view + layer ? 0 : row.count)
    : element.dataset.layer === layer ? Number(element.dataset.count) : row.count;
  element.info = { row, rows };
  element.dataset.layer = layer;
  element.dataset.count = String(row.count);
  element.setAttribute('tabindex', '0');
  element.setAttribute('role', 'button');
  element.setAttribute('aria-label', `${row.name}: ${LAYERS[layer].label(row)}`);
  if (row.count > before) {
    element.classList.remove('pulse');
    void element.getBBox();  // restarts the animation
    element.classList.add('pulse');
  }
}

function unmark(element) {
  delete element.info;
  delete element.dataset.layer;
  delete element.dataset.count;
  element.removeAttribute('tabindex');
  element.removeAttribute('role');
  element.removeAttribute('aria-label');
  element.classList.remove('pulse', 'filled', 'zero');
  element.style.fill = '';
}

function newCircle(id, className, r) {
  const [x, y] = placeOf(id);
  const circle = svg('circle', {
    class: className, cx: x.toFixed(1), cy: y.toFixed(1), r, 'data-country': id,
  });
  addPointerHandlers(circle);
  return circle;
}

// One bubble per country of `rows` with a count and a place on the map.
// A bubble pulses when its count rises, not when the layer changes.
function renderBubbles(rows) {
  const placed = rows.filter((row) => centroids[row.id] && row.count > 0);
  const busiest = Math.max(1, ...placed.map((row) => row.count));
  const group = $('bubbles');
  const keep = new Set();
  for (const row of placed) {
    let circle = bubbles.get(row.id);
    if (!circle) {
      circle = newCircle(row.id, 'bubble', 0);
      bubbles.set(row.id, circle);
    }
    // Area, not radius, proportional to the count.
    const r = Math.max(MIN_RADIUS, MAX_RADIUS * Math.sqrt(row.count / busiest));
    circle.setAttribute('r', r.toFixed(2));
    mark(circle, row, rows);
    keep.add(row.id);
  }
  for (const [id, circle] of bubbles) {
    if (!keep.has(id)) { circle.remove(); bubbles.delete(id); }
  }
  // Big bubbles first, so small ones stay on top and hoverable.
  placed.sort((a, b) => b.count - a.count).forEach((row) => group.append(bubbles.get(row.id)));
}

// The filled view: every country's shape coloured by the scale (class
// "filled", with data-country, data-count and data-layer like a bubble) or
// marked "zero"; a country with a count but no shape on this 1:110m map
// (Singapore, Malta, ...) gets a dot in the same colour. `on` false clears
// it all for the bubbles view.
function renderFilled(rows, on) {
  const placed = !on ? [] : rows.filter((row) =>
    row.count > 0 && (shapes.has(row.id) || centroids[row.id]));
  const { classes, colourOf } = colourScale(LAYERS[layer],
    Math.max(0, ...placed.map((row) => row.count)));
  const byId = new Map(placed.map((row) => [row.id, row]));
  for (const [id, path] of shapes) {
    const row = byId.get(id);
    if (row) {
      path.classList.add('filled');
      path.classList.remove('zero');
      path.style.fill = colourOf(row.count);
      mark(path, row, rows);
    } else {
      unmark(path);
      if (on) path.classList.add('zero');
    }
  }
  const keep = new Set();
  for (const row of placed) {
    if (shapes.has(row.id)) continue;
    let dot = islands.get(row.id);
    if (!dot) {
      dot = newCircle(row.id, 'island', ISLAND_RADIUS);
      islands.set(row.id, dot);
      $('islands').append(dot);
    }
    dot.style.fill = colourOf(row.count);
    mark(dot, row, rows);
    keep.add(row.id);
  }
  for (const [id, dot] of islands) {
    if (!keep.has(id)) { dot.remove(); islands.delete(id); }
  }
  return classes;
}

// The layer's bubbles or filled countries, top-countries table, titles and
// legend, and a note on what it counts.
function renderLayer(state) {
  const shown = LAYERS[layer];
  const rows = shown.rows(state);
  renderBubbles(view === 'bubbles' ? rows : []);
  renderLegend(shown, renderFilled(rows, view === 'filled'));
  drawn = view + layer;
  for (const element of document.querySelectorAll('#map .selected')) {
    element.classList.remove('selected');
  }
  if (selected) {
    const element = (view === 'bubbles' ? bubbles : islands).get(selected) ?? shapes.get(selected);
    if (element?.dataset.count !== undefined) element.classList.add('selected');
  }
  $('map-title').textContent = shown.title;
  $('top-title').textContent = shown.top;
  $('top-count').textContent = shown.column;
  const table = $('top').tBodies[0];
  table.replaceChildren();
  for (const row of rows.slice(0, 10)) {
    const tr = table.insertRow();
    cell(tr, row.name);
    cell(tr, shown.format(row.count));
    cell(tr, `${shown.share(row, rows)}%`);
  }
  const note = $('layer-note');
  if (layer === 'traffic') {
    note.textContent = `${bytes(state.received_bytes)} received, ${bytes(state.sent_bytes)} sent`;
  } else if (layer === 'failed') {
    const reasons = {};
    for (const row of rows) {
      for (const [reason, n] of Object.entries(row.reasons)) {
        reasons[reason] = (reasons[reason] ?? 0) + n;
      }
    }
    note.textContent = [
      count(total(rows), 'failed connection', 'failed connections') +
        Object.entries(reasons).map(([reason, n]) => `, ${numbers.format(n)} ${reason}`).join(''),
      // A failed connection reached no service (docs/API.md).
      ...(state.service === null ? [] : ['the service filter does not apply to them']),
    ].join('; ');
  }
  note.hidden = layer === 'accepted';
}

// ---- panels: a country's detail, top peers, the word cloud -----------------

let selected = null;        // alpha-2 of the country whose detail is open
let networksAsked = null;   // the query of the networks shown or on their way
let networksBusy = false;

// The country's name and counts, from the state (0 when it has none).
function countryFigures(state, id) {
  const country = state.countries.find((c) => c.id === id);
  const failure = (state.failures ?? []).find((f) => f.id === id);
  return {
    name: country?.name ?? failure?.name ?? id,
    connections: country?.connections ?? 0,
    unique: country?.unique_addresses ?? 0,
    received: country?.received_bytes ?? 0,
    sent: country?.sent_bytes ?? 0,
    failed: failure?.failed_connections ?? 0,
  };
}

function openDetail(id) {
  if (id !== selected) {
    $('networks').tBodies[0].replaceChildren();
    $('networks-note').textContent = '';
  }
  selected = id;
  networksAsked = null;
  $('detail').hidden = false;
  if (latest) render(latest);
}

function closeDetail() {
  selected = null;
  networksAsked = null;
  $('detail').hidden = true;
  if (latest) render(latest);
}

function renderDetail(state) {
  if (!selected) return;
  const figures = countryFigures(state, selected);
  $('detail-title').textContent = figures.name;
  const entries = [
    ['connections', numbers.format(figures.connections)],
    ['unique addresses', numbers.format(figures.unique)],
    ['failed', numbers.format(figures.failed)],
    ['received', bytes(figures.received)],
    ['sent', bytes(figures.sent)],
  ];
  $('detail-counts').replaceChildren(...entries.map(([term, value]) => {
    const div = document.createElement('div');
    const dt = document.createElement('dt');
    dt.textContent = term;
    const dd = document.createElement('dd');
    dd.textContent = value;
    div.append(dt, dd);
    return div;
  }));
  const filters = [state.port === null ? null : `port ${state.port}`,
    state.service === null ? null : `service ${state.service}`].filter(Boolean);
  $('networks-title').textContent = ['Top networks', ...filters].join(' · ');
  // Asked again when the country's connections change: a new network may
  // have come in.
  const params = new URLSearchParams(query().slice(1));
  params.set('country', selected);
  params.set('limit', '10');
  fetchNetworks(`${params}#${figures.connections}`);
}

// What the networks that are not an AS stand for (docs/API.md).
const NETWORK_KINDS = {
  private: 'private addresses',
  unknown: 'not in the ASN database',
  overflow: 'not recorded',
};

// GET /api/v1/networks for `asked` (its query, then # and the connections
// it is for), one request at a time; the latest one asked wins.
function fetchNetworks(asked) {
  if (asked === networksAsked) return;
  networksAsked = asked;
  if (networksBusy) return;  // asked again when this one is done
  networksBusy = true;
  const note = $('networks-note');
  if (!$('networks').tBodies[0].rows.length) note.textContent = 'loading…';
  fetch('/api/v1/networks?' + asked.split('#')[0])
    .then((response) => response.json().catch(() => ({})).then((body) => {
      if (!response.ok) throw new Error(body.error ?? `HTTP ${response.status}`);
      return body;
    }))
    .then((body) => {
      if (asked !== networksAsked || !selected) return;
      const rows = body.networks.map((n) => [n.asn, n.as_name || (NETWORK_KINDS[n.asn] ?? ''),
        numbers.format(n.connections)]);
      const table = $('networks').tBodies[0];
      table.replaceChildren(...rows.map((cells) => {
        const tr = document.createElement('tr');
        for (const text of cells) cell(tr, text);
        return tr;
      }));
      note.textContent = body.other_connections > 0
        ? `${count(body.other_connections, 'connection', 'connections')} from other networks`
        : rows.length ? '' : 'no connections from this country';
    })
    .catch((error) => {
      if (asked !== networksAsked) return;
      $('networks').tBodies[0].replaceChildren();
      note.textContent = `networks unavailable: ${error.message}`;
    })
    .finally(() => {
      networksBusy = false;
      if (selected && asked !== networksAsked) {
        const again = networksAsked;
        networksAsked = null;
        fetchNetworks(again);
      }
    });
}

// The heaviest client addresses ("peers", absent when top peers are off):
// address (a /24 or /48 unless full addresses are shown), country, and
// connections with the sketch's error bound when it has one ("12 ±3": the
// true count is from 9 to 12).
function renderPeers(state) {
  const panel = $('peers-panel');
  panel.hidden = !Array.isArray(state.peers);
  if (panel.hidden) return;
  $('peers').tBodies[0].replaceChildren(...state.peers.map((peer) => {
    const tr = document.createElement('tr');
    cell(tr, peer.address);
    cell(tr, peer.country_name ?? peer.country);
    cell(tr, numbers.format(peer.connections) +
      (peer.max_error > 0 ? ` ±${numbers.format(peer.max_error)}` : ''));
    return tr;
  }));
  $('peers-note').textContent = state.peers.length ? '' : 'no connections yet';
}

// The word cloud ("words", absent when it is off), most counted first,
// each word's size growing with the log of its count. Words come from
// anyone allowed to post them: they are only ever text nodes, never markup
// and never part of an attribute.
const WORD_SIZES = [0.9, 2.6];  // rem, for one and for the most counted
let wordsShown = '';
function renderWords(state) {
  const panel = $('words-panel');
  panel.hidden = !Array.isArray(state.words);
  if (panel.hidden) return;
  const text = JSON.stringify(state.words);
  if (text === wordsShown) return;  // unchanged: no flicker
  wordsShown = text;
  const most = Math.max(1, ...state.words.map((w) => w.count));
  const [small, large] = WORD_SIZES;
  $('words').replaceChildren(...state.words.map(({ word, count: n }) => {
    const span = document.createElement('span');
    span.append(document.createTextNode(word));
    const size = small + (large - small) * Math.log(n) / Math.log(Math.max(most, 2));
    span.style.fontSize = `${size.toFixed(2)}rem`;
    span.dataset.count = String(n);
    return span;
  }));
  $('words-note').textContent = state.words.length ? '' : 'no words yet';
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
  renderLayer(state);
  renderPorts(state.ports, port);
  renderServices(state.services, state.service ?? '');
  $('total-connections').textContent = numbers.format(state.connections);
  $('total-addresses').textContent = numbers.format(state.unique_addresses);
  $('total-countries').textContent =
    numbers.format(state.countries.filter((c) => isCountry(c.id)).length);
  $('source').textContent = state.source;
  renderDetail(state);
  renderPeers(state);
  renderWords(state);

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
// With `withView`, the page's own address: the layer and the view too,
// unless they are the defaults, so that a link shows the same view.
function query(withView = false) {
  const params = new URLSearchParams();
  for (const name of ['port', 'service']) {
    if ($(name).value) params.set(name, $(name).value);
  }
  if (withView && layer !== 'accepted') params.set('layer', layer);
  if (withView && view !== 'bubbles') params.set('view', view);
  const text = params.toString();
  return text ? `?${text}` : '';
}

function rememberView() { history.replaceState(null, '', query(true) || location.pathname); }

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

// A pair of radio buttons (layer, view): sets the state, redraws from the
// last message (every layer and view is in each: no new stream).
function followChoice(name, initial, set) {
  for (const radio of document.querySelectorAll(`input[name="${name}"]`)) {
    radio.checked = radio.value === initial;
    radio.addEventListener('change', () => {
      set(radio.value);
      hideTooltip();
      rememberView();
      if (latest) render(latest);
    });
  }
}

function start() {
  // The bubble moves when the layout changes; its tooltip would not.
  window.addEventListener('resize', hideTooltip);
  const initial = new URLSearchParams(location.search);
  renderPorts([], initial.get('port') || '');
  renderServices([], initial.get('service') || '');
  if (Object.hasOwn(LAYERS, initial.get('layer'))) layer = initial.get('layer');
  if (VIEWS.includes(initial.get('view'))) view = initial.get('view');
  followChoice('layer', layer, (value) => { layer = value; });
  followChoice('view', view, (value) => { view = value; });
  for (const name of ['port', 'service']) {
    $(name).addEventListener('change', () => {
      rememberView();
      connect();
    });
  }
  // A country's detail: click or tap a bubble, shape or dot, or Enter or
  // Space on the focused one; Escape or the close button closes it.
  const map = $('map');
  const target = (event) => event.target.closest?.('[data-country][data-count]');
  map.addEventListener('click', (event) => {
    const element = target(event);
    if (element) openDetail(element.dataset.country);
  });
  map.addEventListener('keydown', (event) => {
    const element = target(event);
    if (element && (event.key === 'Enter' || event.key === ' ')) {
      event.preventDefault();
      openDetail(element.dataset.country);
    }
  });
  $('detail-close').addEventListener('click', closeDetail);
  document.addEventListener('keydown', (event) => {
    if (event.key === 'Escape' && selected) closeDetail();
  });
  connect();
  Promise.all(['countries-110m.json', 'centroids.json'].map((name) =>
    fetch(`/live_map/${name}`).then((response) => {
      if (!response.ok) throw new Error(`${name}: HTTP ${response.status}`);
      return response.json();
    })))
    .then(([topology, points]) => {
      drawMap(topology, points);
      centroids = points;
      if (latest) render(latest);
    })
    .catch((error) => setStatus('down', `map data failed to load: ${error.message}`));
}

start();
