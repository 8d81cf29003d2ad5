// The page: builds a request from the form, streams the answer, draws each entity the moment it arrives.
import { ApiError, base64, call, stream } from './api.js';
import { Overlay, pixels } from './overlay.js';

const $ = (id) => document.getElementById(id);
const KEY_STORAGE = 'kosmos2.apiKey';
const TASKS = {
  brief: 'TASK_KIND_BRIEF_CAPTION',
  detailed: 'TASK_KIND_DETAILED_CAPTION',
  ground: 'TASK_KIND_PHRASE_GROUNDING',
  refer: 'TASK_KIND_REFERRING_EXPRESSION_GENERATION',
  ask: 'TASK_KIND_VQA',
};

const overlay = new Overlay($('overlay'), $('preview'));
const state = { file: null, imageData: null, sessionId: null, entities: [], text: '' };

// The API key lives in this tab's session storage only.
$('api-key').value = sessionStorage.getItem(KEY_STORAGE) ?? '';
$('api-key').addEventListener('input', () => sessionStorage.setItem(KEY_STORAGE, $('api-key').value));

$('image').addEventListener('change', () => $('image').files[0] && useImage($('image').files[0]));
const drop = $('stage');
for (const type of ['dragover', 'dragenter']) drop.addEventListener(type, (e) => { e.preventDefault(); drop.classList.add('dropping'); });
drop.addEventListener('dragleave', () => drop.classList.remove('dropping'));
drop.addEventListener('drop', (e) => {
  e.preventDefault();
  drop.classList.remove('dropping');
  if (e.dataTransfer.files[0]) useImage(e.dataTransfer.files[0]);
});

$('task').addEventListener('change', showFieldsForTask);
overlay.onRegion = (region) => { $('region').value = region ? formatRegion(region) : ''; };
$('region').addEventListener('change', () => {
  const region = parseRegion($('region').value);
  overlay.setRegion(region);
  if ($('region').value.trim() && !region) showError('Region: give four numbers x1,y1,x2,y2 in pixels with x2 > x1 and y2 > y1.');
});
$('clear-region').addEventListener('click', () => { overlay.setRegion(null); $('region').value = ''; });
$('new-chat').addEventListener('click', resetChat);
$('request').addEventListener('submit', (e) => { e.preventDefault(); run(); });
showFieldsForTask();

function useImage(file) {
  state.file = file;
  state.imageData = null;
  resetChat();
  const url = URL.createObjectURL(file);
  $('preview').onload = () => {
    overlay.reset($('preview').naturalWidth, $('preview').naturalHeight);
    $('frame').hidden = false;
    $('no-image').hidden = true;
  };
  $('preview').src = url;
}

function showFieldsForTask() {
  const task = $('task').value;
  for (const element of document.querySelectorAll('[data-for]')) {
    element.hidden = !element.dataset.for.split(' ').includes(task);
  }
}

function resetChat() {
  state.sessionId = null;
  $('chat').replaceChildren();
}

async function run() {
  hideError();
  if (!state.file) {
    showError('Choose an image first.');
    return;
  }
  const task = $('task').value;
  const apiKey = $('api-key').value.trim();
  const maxTokens = Number.parseInt($('max-tokens').value, 10);
  const stopping = Number.isFinite(maxTokens) && maxTokens > 0 ? { maxNewTokens: maxTokens } : undefined;
  const region = parseRegion($('region').value);
  $('run').disabled = true;
  $('output').dataset.state = 'running';
  startAnswer();
  try {
    state.imageData ??= await base64(state.file);
    if (task === 'chat') {
      await chatTurn(apiKey, region, stopping);
    } else {
      const body = { image: { data: state.imageData }, task: TASKS[task], stopping };
      if (task === 'ground') body.phrases = $('phrases').value.split(',').map((p) => p.trim()).filter(Boolean);
      if (task === 'ask') body.text = $('text').value;
      if (task === 'refer') {
        if (!region) throw new Error('Draw the region to describe on the image (or type it in Region).');
        body.regions = [{ phrase: 'It', boxes: [region], frame: 'BOX_FRAME_PIXELS' }];
      }
      await stream('/v1/generate', apiKey, body, onMessage);
    }
    $('output').dataset.state = 'done';
  } catch (error) {
    showError(error instanceof ApiError ? error.message : `Error: ${error.message}`);
  } finally {
    $('run').disabled = false;
  }
}

async function chatTurn(apiKey, region, stopping) {
  const question = $('text').value.trim();
  if (!question) throw new Error('Type a question for this turn.');
  if (!state.sessionId) {
    const session = await call('POST', '/v1/sessions', apiKey, { image: { data: state.imageData }, options: { grounding: true, stopping } });
    state.sessionId = session.id;
  }
  const turn = document.createElement('li');
  const asked = document.createElement('p');
  asked.className = 'question';
  asked.textContent = region ? `${question} [${formatRegion(region)}]` : question;
  turn.append(asked);
  $('chat').append(turn);
  const body = { text: question, stopping, regions: region ? [{ boxes: [region], frame: 'BOX_FRAME_PIXELS' }] : undefined };
  await stream(`/v1/sessions/${encodeURIComponent(state.sessionId)}/turns`, apiKey, body, onMessage);
  const answer = document.createElement('p');
  answer.className = 'answer';
  answer.textContent = state.text;
  turn.append(answer);
}

function startAnswer() {
  state.text = '';
  state.entities = [];
  overlay.clearEntities();
  $('entities').replaceChildren();
  $('timings').textContent = '';
  renderText();
}

function onMessage(message) {
  if (message.delta) {
    state.text += message.delta.text ?? '';
    renderText();
  } else if (message.entity) {
    addEntity(message.entity);
  } else if (message.restart) {
    startAnswer();
  } else if (message.result) {
    // The final text is authoritative (post-processing may strip what the deltas carried).
    state.text = message.result.text ?? '';
    renderText();
    showTimings(message.result.timings ?? {});
  }
}

function addEntity(entity) {
  const index = state.entities.length;
  state.entities.push(entity);
  const group = overlay.addEntity(entity, index);
  const item = document.createElement('li');
  item.tabIndex = 0;
  item.dataset.entity = index;
  item.style.setProperty('--colour', group.querySelector('rect.box')?.getAttribute('stroke') ?? 'currentColor');
  const boxes = (entity.boxes ?? []).map((b) => formatRegion(pixels(b.pixels), 0)).join('; ');
  item.textContent = `${entity.phrase}: ${boxes || 'no box'}`;
  hoverable(item, index);
  $('entities').append(item);
  renderText();
}

/** The text with each entity's phrase as a hoverable span (spans are code-point offsets in the final text). */
function renderText() {
  const out = $('text-out');
  const chars = Array.from(state.text);
  const spans = state.entities
    .map((e, i) => ({ start: e.spanStart ?? 0, end: e.spanEnd ?? 0, index: i }))
    .filter((s) => s.end > s.start && s.end <= chars.length)
    .sort((a, b) => a.start - b.start);
  out.replaceChildren();
  let at = 0;
  for (const span of spans) {
    if (span.start < at) continue;
    out.append(chars.slice(at, span.start).join(''));
    const phrase = document.createElement('span');
    phrase.className = 'phrase';
    phrase.dataset.entity = span.index;
    phrase.textContent = chars.slice(span.start, span.end).join('');
    hoverable(phrase, span.index);
    out.append(phrase);
    at = span.end;
  }
  out.append(chars.slice(at).join(''));
}

function hoverable(element, index) {
  const on = () => overlay.highlight(index, true);
  const off = () => overlay.highlight(index, false);
  element.addEventListener('mouseenter', on);
  element.addEventListener('mouseleave', off);
  element.addEventListener('focus', on);
  element.addEventListener('blur', off);
}

function showTimings(t) {
  const ms = (v) => `${Math.round(v ?? 0)} ms`;
  $('timings').textContent = `queue ${ms(t.queueMs)} · vision ${ms(t.visionMs)} (${t.imageCacheHit ? 'cache hit' : 'encoded'})`
    + ` · first token ${ms(t.timeToFirstTokenMs)} · total ${ms(t.totalMs)}`;
}

function showError(message) {
  $('error').textContent = message;
  $('error').hidden = false;
  $('output').dataset.state = 'error';
}

function hideError() {
  $('error').hidden = true;
  $('error').textContent = '';
}

function parseRegion(text) {
  const values = text.split(',').map((v) => Number.parseFloat(v));
  if (values.length !== 4 || values.some((v) => !Number.isFinite(v) || v < 0)) return null;
  const [x1, y1, x2, y2] = values;
  return x2 > x1 && y2 > y1 ? { x1, y1, x2, y2 } : null;
}

function formatRegion(r, digits = 1) {
  const f = (v) => Number(v.toFixed(digits)).toString();
  return `${f(r.x1)},${f(r.y1)},${f(r.x2)},${f(r.y2)}`;
}
