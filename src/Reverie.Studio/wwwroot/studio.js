// Reverie studio: plain JavaScript over the studio's API (no build step).
'use strict';
const csrf = document.querySelector('meta[name="reverie-csrf"]').content;
const $ = id => document.getElementById(id);

async function api(method, url, body) {
  const init = { method, headers: { 'X-Reverie-Csrf': csrf } };
  if (body instanceof FormData) init.body = body;
  else if (body !== undefined) { init.body = JSON.stringify(body); init.headers['Content-Type'] = 'application/json'; }
  const r = await fetch(url, init);
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (!r.ok) throw new Error((data && data.error) || `${r.status} ${r.statusText}`);
  return data;
}

// ---- navigation
function show(page) {
  for (const b of document.querySelectorAll('nav button')) b.classList.toggle('active', b.dataset.page === page);
  for (const s of document.querySelectorAll('.page')) s.hidden = s.id !== 'page-' + page;
  if (page === 'jobs') refreshJobs();
  if (page === 'gallery') refreshGallery();
  if (page === 'microscope' && !$('ms-layer').options.length) msLayers();
}
for (const b of document.querySelectorAll('nav button')) b.addEventListener('click', () => show(b.dataset.page));

// ---- dream form
async function loadModels() {
  const models = (await api('GET', '/api/models')).filter(m => m.status !== 'missing');
  for (const sel of [$('model'), $('ms-model'), $('at-model'), $('st-model')]) {
    sel.innerHTML = '';
    for (const m of models) sel.add(new Option(m.name, m.name));
    if (models.some(m => m.name === 'googlenet')) sel.value = 'googlenet';
  }
  await loadLayers();
}
const layerTables = {};
async function fillLayers(model, sel, errorBox) {
  sel.innerHTML = '<option>loading…</option>';
  try {
    const layers = layerTables[model] ||= await api('GET', `/api/models/${encodeURIComponent(model)}/layers`);
    sel.innerHTML = '';
    for (const l of layers.filter(l => l.channels > 1 && l.shape.length === 4)) {
      const o = new Option(`${l.name} (${l.channels} channels)`, l.name);
      o.dataset.channels = l.channels;
      sel.add(o);
    }
    const preferred = [...sel.options].find(o => o.value === 'inception_4c/output');
    if (preferred) sel.value = preferred.value;
  } catch (e) { sel.innerHTML = ''; errorBox.textContent = e.message; }
}
const loadLayers = () => fillLayers($('model').value, $('layer'), $('dream-error'));
$('model').addEventListener('change', loadLayers);

// A photo picker: an upload field, an example list, a thumbnail and a hidden field holding the upload id or example path.
function photoPicker(prefix, errorBox) {
  const box = document.querySelector(`[data-picker="${prefix}"]`);
  box.append($('picker-template').content.cloneNode(true));
  for (const e of box.querySelectorAll('[data-id]')) e.id = prefix + e.dataset.id;
  const el = name => $(prefix + name);
  el('photo-title').textContent = box.dataset.title;
  el('example').addEventListener('change', () => {
    const o = el('example').selectedOptions[0];
    if (!o.value) return;
    el('photo').value = o.value;
    el('photo-thumb').src = o.dataset.url; el('photo-thumb').hidden = false;
    el('photo-file').value = '';
  });
  el('photo-file').addEventListener('change', async () => {
    const f = el('photo-file').files[0];
    if (!f) return;
    errorBox.textContent = '';
    const form = new FormData(); form.append('file', f);
    try {
      const up = await api('POST', '/api/uploads', form);
      el('photo').value = up.id;
      el('photo-thumb').src = up.url; el('photo-thumb').hidden = false;
      el('example').value = '';
    } catch (e) { errorBox.textContent = e.message; el('photo').value = ''; }
  });
}
photoPicker('', $('dream-error'));
photoPicker('at-', $('at-error'));
for (const p of ['st-', 'st1-', 'st2-']) photoPicker(p, $('st-error'));
async function loadExamples() {
  for (const e of await api('GET', '/api/examples'))
    for (const sel of [$('example'), $('at-example'), $('st-example'), $('st1-example'), $('st2-example')]) { const o = new Option(e.name, e.path); o.dataset.url = e.url; sel.add(o); }
}

$('dream-form').addEventListener('submit', async ev => {
  ev.preventDefault();
  $('dream-error').textContent = '';
  if (!$('photo').value) { $('dream-error').textContent = 'Choose a photo first: upload one or pick an example.'; return; }
  const num = id => Number($(id).value);
  const recipe = {
    command: 'dream',
    options: {
      input: $('photo').value, model: $('model').value, seed: num('seed'), maxSize: num('max-size'),
      layers: [$('channels').value.trim() ? `l2(${$('layer').value}:${$('channels').value.trim()})` : $('layer').value],
      dream: { octaves: num('octaves'), steps: num('steps'), stepSize: num('step-size'), jitter: num('jitter'), keepColors: $('keep-colors').checked },
    },
  };
  try { const j = await api('POST', '/api/jobs', recipe); follow(j.id); }
  catch (e) { $('dream-error').textContent = e.message; }
});

// ---- following a job: a live panel (state, stage, time left, loss terms, preview, cancel, then the result, re-run and recipe)
class LivePanel {
  constructor(prefix, errorBox) {
    this.p = prefix; this.err = errorBox; this.source = null; this.followed = null;
    // The panel's markup, from the one template, with its elements' ids prefixed.
    const box = document.querySelector(`[data-live="${prefix}"]`);
    box.append($('live-template').content.cloneNode(true));
    for (const e of box.querySelectorAll('[data-id]')) e.id = prefix + e.dataset.id;
    this.el('preview').addEventListener('load', () => { const p = this.el('preview'); p.dataset.updates = String(Number(p.dataset.updates) + 1); });
    this.el('cancel').addEventListener('click', async () => {
      if (this.followed === null) return;
      this.el('cancel').disabled = true;
      try { await api('DELETE', `/api/jobs/${this.followed}`); } catch (e) { this.err.textContent = e.message; }
    });
  }
  el(name) { return $(this.p + name); }
  follow(id) {
    if (this.source) this.source.close();
    this.followed = id;
    this.el('live-job').textContent = '#' + id;
    this.el('preview').dataset.updates = '0';
    this.el('preview').removeAttribute('src');
    this.el('progress').value = 0;
    for (const n of ['stage', 'eta', 'terms']) this.el(n).textContent = '';
    for (const n of ['download', 'rerun', 'recipe-box']) this.el(n).hidden = true;
    this.el('cancel').disabled = false;
    const source = this.source = new EventSource(`/api/jobs/${id}/events`);
    source.onmessage = m => this.onEvent(id, JSON.parse(m.data));
    source.addEventListener('end', () => source.close());
  }
  onEvent(id, e) {
    if (id !== this.followed) return;
    if (e.event === 'state') return this.showState(e);
    if (e.event === 'progress') {
      this.el('progress').value = e.fraction || 0;
      this.el('stage').textContent = e.stage || '';
      this.el('eta').textContent = e.eta !== undefined ? `${Math.round(e.eta)} s left` : '';
      this.el('terms').textContent = e.terms ? Object.entries(e.terms).map(([k, v]) => `${k} ${Number(v).toPrecision(3)}`).join('  ') : (e.value !== undefined ? `objective ${Number(e.value).toPrecision(4)}` : '');
      if (e.preview) this.el('preview').src = `/api/jobs/${id}/preview?v=${e.preview}`;
      this.el('state').textContent = 'running'; this.el('state').className = 'state running';
    } else if (e.event === 'note') this.el('terms').textContent = 'note: ' + e.message;
  }
  async showState(j) {
    this.el('state').textContent = j.state + (j.error ? ': ' + j.error : '');
    this.el('state').className = 'state ' + j.state;
    if (j.progress) this.el('progress').value = j.progress;
    const ended = ['done', 'failed', 'cancelled', 'interrupted'].includes(j.state);
    this.el('cancel').disabled = ended;
    if (!ended) return;
    if (this.source) this.source.close();
    if (j.files && j.files.length) {
      this.el('preview').src = j.files[0];
      this.el('download').href = j.files[0]; this.el('download').hidden = false;
    }
    this.el('rerun').hidden = false;
    this.el('rerun').onclick = async () => { try { this.follow((await api('POST', `/api/jobs/${j.id}/rerun`)).id); } catch (e) { this.err.textContent = e.message; } };
    try { this.el('recipe').textContent = JSON.stringify(await api('GET', `/api/jobs/${j.id}/recipe`), null, 2); this.el('recipe-box').hidden = false; } catch { }
    refreshQueueCount();
  }
}
const dreamLive = new LivePanel('', $('dream-error'));
const follow = id => dreamLive.follow(id);
const styleLive = new LivePanel('st-', $('st-error'));

// ---- microscope: every channel's visualization, made by atlas jobs through the queue and kept in the channel cache
const PER_PAGE = 64;
const tile = () => ({ size: Number($('ms-size').value), steps: Number($('ms-steps').value) });
async function msLayers() {
  await fillLayers($('ms-model').value, $('ms-layer'), $('ms-error'));
  msPages();
}
function msPages() {
  const o = $('ms-layer').selectedOptions[0];
  const n = o ? Number(o.dataset.channels) : 0;
  $('ms-page').innerHTML = '';
  for (let a = 0; a < n; a += PER_PAGE) $('ms-page').add(new Option(`${a}–${Math.min(n, a + PER_PAGE) - 1}`, String(a)));
  msGrid();
}
function msRange() {
  const o = $('ms-layer').selectedOptions[0];
  const n = o ? Number(o.dataset.channels) : 0, a = Number($('ms-page').value || 0);
  return [a, Math.min(n, a + PER_PAGE) - 1];
}
const msQuery = () => `model=${encodeURIComponent($('ms-model').value)}&layer=${encodeURIComponent($('ms-layer').value)}&size=${tile().size}&steps=${tile().steps}`;
async function msGrid() {
  const [a, b] = msRange();
  const cached = new Set((await api('GET', '/api/microscope/tiles?' + msQuery())).cached);
  const grid = $('ms-grid');
  grid.innerHTML = '';
  let missing = 0;
  for (let c = a; c <= b; c++) {
    const t = document.createElement('div');
    t.className = 'tile' + (cached.has(c) ? '' : ' missing');
    t.id = 'ms-tile-' + c;
    if (cached.has(c)) { const img = document.createElement('img'); img.src = `/api/microscope/tile?${msQuery()}&channel=${c}`; img.alt = 'channel ' + c; t.append(img); }
    else missing++;
    const label = document.createElement('span'); label.textContent = c; t.append(label);
    t.onclick = () => msChannel(c, cached.has(c));
    grid.append(t);
  }
  $('ms-status').textContent = missing ? `${missing} of ${b - a + 1} channels not rendered yet` : `all ${b - a + 1} channels rendered`;
  $('ms-render').disabled = missing === 0;
  return missing;
}
$('ms-model').addEventListener('change', msLayers);
$('ms-layer').addEventListener('change', msPages);
$('ms-page').addEventListener('change', msGrid);
$('ms-size').addEventListener('change', msGrid);
$('ms-steps').addEventListener('change', msGrid);
$('ms-render').addEventListener('click', async () => {
  const [a, b] = msRange();
  $('ms-render').disabled = true;
  try {
    const j = await api('POST', '/api/jobs', { command: 'atlas', options: { model: $('ms-model').value, layer: $('ms-layer').value, channels: `${a}..${b}`, cache: true, visualize: tile() } });
    $('ms-progress').hidden = false; $('ms-progress').value = 0;
    const es = new EventSource(`/api/jobs/${j.id}/events`);
    let stage = '';
    es.onmessage = m => {
      const e = JSON.parse(m.data);
      if (e.event === 'progress') {
        $('ms-progress').value = e.fraction || 0;
        $('ms-status').textContent = e.stage + (e.eta !== undefined ? ` · ${Math.round(e.eta)} s left` : '');
        const batch = (e.stage || '').split(':')[0];
        if (batch !== stage) { if (stage) msGrid(); stage = batch; }
      } else if (e.event === 'state' && ['done', 'failed', 'cancelled', 'interrupted'].includes(e.state)) {
        es.close(); $('ms-progress').hidden = true; msGrid();
        if (e.error) $('ms-status').textContent = e.error;
      }
    };
    es.addEventListener('end', () => es.close());
  } catch (e) { $('ms-status').textContent = e.message; $('ms-render').disabled = false; }
});
function msChannel(c, cached) {
  $('ms-channel').hidden = false;
  $('ms-channel-title').textContent = `${$('ms-layer').value} · channel ${c}`;
  $('ms-channel-image').src = cached ? `/api/microscope/tile?${msQuery()}&channel=${c}` : '';
  $('ms-variants').innerHTML = '';
  $('ms-error').textContent = cached ? '' : 'Not rendered yet: render this page of channels first.';
  $('ms-dream').onclick = async () => {
    $('model').value = $('ms-model').value;
    await loadLayers();
    $('layer').value = $('ms-layer').value;
    $('channels').value = String(c);
    show('dream');
  };
  $('ms-variants-run').onclick = async () => {
    $('ms-error').textContent = '';
    try {
      const j = await api('POST', '/api/jobs', { command: 'visualize', options: { model: $('ms-model').value, objective: `${$('ms-layer').value}:${c}`, diversity: 100, visualize: { size: 160, steps: 256, batch: 4 } } });
      $('ms-variants').textContent = 'rendering four diverse variants…';
      const es = new EventSource(`/api/jobs/${j.id}/events`);
      es.onmessage = m => {
        const e = JSON.parse(m.data);
        if (e.event === 'progress') $('ms-variants').textContent = `rendering four diverse variants… ${Math.round((e.fraction || 0) * 100)}%`;
        if (e.event === 'state' && e.files && e.files.length) { es.close(); $('ms-variants').innerHTML = `<img src="${e.files[0]}" alt="variants of channel ${c}">`; }
        else if (e.event === 'state' && e.error) { es.close(); $('ms-variants').textContent = e.error; }
      };
      es.addEventListener('end', () => es.close());
    } catch (e) { $('ms-error').textContent = e.message; }
  };
  $('ms-channel').scrollIntoView();
}

// ---- attack: the photo before and after, the top classes, the amplified perturbation
// The methods and their defaults come from the server (GET /api/attack-methods): choosing one sets
// the steps (queries for a black box) and the budget: an L2 radius for pgd-l2, a cap that starts at
// 0 (none) for the methods that look for the smallest change.
let attackMethods = [];
function attackMethod() { return attackMethods.find(m => m.value === $('at-method').value); }
$('at-eps').addEventListener('input', () => {
  const e = Number($('at-eps').value), m = attackMethod();
  $('at-eps-value').textContent = m && m.optionalEps && e === 0 ? 'no cap'
    : m && m.l2 ? `${e.toFixed(2)} (L2)${m.optionalEps ? ', cap' : ''}`
    : `${e.toFixed(3)} (${(e * 255).toFixed(1)}/255)${m && m.optionalEps ? ', cap' : ''}`;
});
$('at-method').addEventListener('change', () => {
  const m = attackMethod();
  if (!m) return;
  $('at-steps').value = m.steps;
  $('at-steps-label').textContent = m.blackBox ? 'Queries' : 'Steps';
  $('at-eps').max = m.l2 ? '10' : '0.1';
  $('at-eps').step = m.l2 ? '0.01' : '0.001';
  $('at-eps').value = String(m.eps);
  $('at-eps').dispatchEvent(new Event('input'));
});
(async () => {
  try { attackMethods = await api('GET', '/api/attack-methods'); } catch (e) { $('at-error').textContent = e.message; return; }
  for (const m of attackMethods) $('at-method').add(new Option(m.title, m.value, false, m.name === 'bim'));
  $('at-method').dispatchEvent(new Event('change'));
})();
function classes(t) { return t ? `${t.label} (${(t.p * 100).toFixed(1)}%)` : ''; }
$('at-form').addEventListener('submit', async ev => {
  ev.preventDefault();
  $('at-error').textContent = '';
  if (!$('at-photo').value) { $('at-error').textContent = 'Choose a photo first: upload one or pick an example.'; return; }
  const options = { input: $('at-photo').value, model: $('at-model').value, attack: { method: $('at-method').value, eps: Number($('at-eps').value), steps: Number($('at-steps').value) } };
  if ($('at-target').value.trim()) options.targetClass = $('at-target').value.trim();
  let job;
  try { job = await api('POST', '/api/jobs', { command: 'attack', options }); } catch (e) { $('at-error').textContent = e.message; return; }
  $('at-result').hidden = true;
  $('at-run').disabled = true;
  $('at-status').textContent = 'queued';
  const es = new EventSource(`/api/jobs/${job.id}/events`);
  es.onmessage = async m => {
    const e = JSON.parse(m.data);
    if (e.event === 'progress') $('at-status').textContent = `${e.stage} · ${Math.round((e.fraction || 0) * 100)}%`;
    if (e.event !== 'state' || !['done', 'failed', 'cancelled', 'interrupted'].includes(e.state)) return;
    es.close();
    $('at-run').disabled = false;
    $('at-status').textContent = e.state + (e.error ? ': ' + e.error : '');
    if (!e.files || e.files.length < 2) return;
    const r = (await api('GET', `/api/jobs/${job.id}/recipe`)).results || {};
    $('at-before').src = $('at-photo-thumb').src;
    $('at-after').src = e.files[0];
    $('at-perturbation').src = e.files[1];
    $('at-before-label').textContent = classes(r.before);
    $('at-after-label').textContent = classes(r.after);
    $('at-metrics').textContent = r.linf !== undefined ? `L∞ ${(r.linf * 255).toFixed(1)}/255 · L2 ${Number(r.l2).toFixed(3)} · PSNR ${Number(r.psnr).toFixed(1)} dB` : '';
    $('at-download').href = e.files[0];
    $('at-result').hidden = false;
  };
  es.addEventListener('end', () => es.close());
});

// ---- style: a content photo, one or two styles with weights, a live preview
$('st-form').addEventListener('submit', async ev => {
  ev.preventDefault();
  $('st-error').textContent = '';
  if (!$('st-photo').value || !$('st1-photo').value) { $('st-error').textContent = 'Choose a content photo and at least one style image.'; return; }
  const styles = [{ path: $('st1-photo').value, weight: Number($('st1-weight').value) }];
  if ($('st2-photo').value) styles.push({ path: $('st2-photo').value, weight: Number($('st2-weight').value) });
  const options = { content: $('st-photo').value, styles, model: $('st-model').value,
    style: { size: Number($('st-size').value), steps: Number($('st-steps').value), styleWeight: Number($('st-style-weight').value), originalColors: $('st-original-colors').checked } };
  try { styleLive.follow((await api('POST', '/api/jobs', { command: 'style', options })).id); }
  catch (e) { $('st-error').textContent = e.message; }
});

// ---- jobs page
async function refreshQueueCount() {
  const active = (await api('GET', '/api/jobs')).filter(j => j.state === 'queued' || j.state === 'running').length;
  $('queue-count').textContent = active ? `(${active})` : '';
}
async function refreshJobs() {
  const body = $('jobs').tBodies[0];
  const jobs = await api('GET', '/api/jobs');
  body.innerHTML = '';
  for (const j of jobs) {
    const tr = body.insertRow();
    tr.id = 'job-' + j.id;
    for (const v of [j.id, j.kind, j.model || '', j.state + (j.error ? ': ' + j.error : ''), Math.round(j.progress * 100) + '%', new Date(j.created).toLocaleString()])
      tr.insertCell().textContent = v;
    tr.cells[3].className = 'state ' + j.state;
    const actions = tr.insertCell();
    const button = (label, fn) => { const b = document.createElement('button'); b.textContent = label; b.onclick = async () => { try { await fn(); } catch (e) { alert(e.message); } refreshJobs(); }; actions.append(b); };
    if (j.state === 'queued' || j.state === 'running') button('Cancel', () => api('DELETE', `/api/jobs/${j.id}`));
    if (j.state === 'running') button('Watch', async () => { show('dream'); follow(j.id); });
    if (['interrupted', 'failed', 'cancelled'].includes(j.state)) button('Resume', () => api('POST', `/api/jobs/${j.id}/resume`));
    if (['done', 'failed', 'cancelled', 'interrupted'].includes(j.state)) {
      button('Re-run', () => api('POST', `/api/jobs/${j.id}/rerun`));
      button('Delete', () => api('DELETE', `/api/jobs/${j.id}`));
    }
  }
  refreshQueueCount();
}
setInterval(() => { if (!$('page-jobs').hidden) refreshJobs(); }, 2000);

// ---- gallery
async function refreshGallery() {
  const kind = $('gallery-kind').value, model = $('gallery-model').value;
  const all = await api('GET', '/api/gallery');
  for (const [sel, key] of [[$('gallery-kind'), 'kind'], [$('gallery-model'), 'model']]) {
    const have = new Set([...sel.options].map(o => o.value));
    for (const v of new Set(all.map(j => j[key]).filter(Boolean))) if (!have.has(v)) sel.add(new Option(v, v));
  }
  const q = new URLSearchParams(); if (kind) q.set('kind', kind); if (model) q.set('model', model);
  const jobs = await api('GET', '/api/gallery?' + q);
  const g = $('gallery');
  g.innerHTML = '';
  for (const j of jobs) {
    if (!j.files.length) continue;
    const card = document.createElement('div');
    card.className = 'card'; card.id = 'card-' + j.id;
    const img = document.createElement('img'); img.src = j.files[0]; img.alt = `${j.kind} #${j.id}`; img.loading = 'lazy';
    const cap = document.createElement('div'); cap.textContent = `#${j.id} ${j.kind} · ${j.model || ''}`;
    card.append(img, cap);
    card.onclick = () => openDetail(j);
    g.append(card);
  }
}
$('gallery-kind').addEventListener('change', refreshGallery);
$('gallery-model').addEventListener('change', refreshGallery);

async function openDetail(j) {
  $('detail').hidden = false;
  $('detail-title').textContent = `#${j.id} ${j.kind}`;
  $('detail-image').src = j.files[0];
  $('detail-download').href = j.files[0];
  $('detail-recipe').textContent = JSON.stringify(await api('GET', `/api/jobs/${j.id}/recipe`), null, 2);
  $('detail-rerun').onclick = async () => { const n = await api('POST', `/api/jobs/${j.id}/rerun`); show('dream'); follow(n.id); };
  $('detail-delete').onclick = async () => { await api('DELETE', `/api/jobs/${j.id}`); $('detail').hidden = true; refreshGallery(); };
  $('detail').scrollIntoView();
}

const drop = $('drop');
drop.addEventListener('dragover', e => { e.preventDefault(); drop.classList.add('over'); });
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', async e => {
  e.preventDefault(); drop.classList.remove('over');
  const f = e.dataTransfer.files[0];
  if (!f) return;
  const form = new FormData(); form.append('file', f);
  try {
    const recipe = await api('POST', '/api/recipes/read', form);
    $('dropped-recipe').textContent = JSON.stringify(recipe, null, 2);
    $('dropped').hidden = false;
    $('dropped-run').onclick = async () => { try { const j = await api('POST', '/api/jobs', recipe); show('dream'); follow(j.id); } catch (err) { $('dropped-recipe').textContent = err.message; } };
  } catch (err) { $('dropped-recipe').textContent = err.message; $('dropped').hidden = false; }
});

// ---- start
loadExamples().catch(() => { });
loadModels().catch(e => { $('dream-error').textContent = e.message; });
refreshQueueCount().catch(() => { });
