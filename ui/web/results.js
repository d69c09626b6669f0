// The results grid and the opened hit, drawn in the browser (ui/results_view.py says why): the
// grid of cards, a current card that J and K move (the page follows it), and the opened hit over
// the page: the player at the hit's exact time, the strip of neighbouring keyframes, the
// summary, what the analyzers found, and submission to DRES with its confirmation. Opening a
// hit, moving between hits and asking to submit happen here at once; what needs the server
// (details not here yet, a like, a pick, a submission, a spoken summary) is sent to Python as the
// trigger value "action", whose rerun brings the data back. Text is set as text, never as HTML.

const KEYS = { next: "j", previous: "k", open: "o", like: "l", dislike: "d", submit: "s", pick: "x", notIt: "n" };
// What the browser keeps between Python's reruns: the current hit and the opened one (by keyframe
// id: a like re-ranks the list, and they stay the same keyframes), the viewer, the submit forms.
const app = { data: null, send: null, grid: null, currentId: null, opened: null, chain: null, viewer: null,
              details: {}, confirm: null, form: {}, asked: new Set(), cards: new Map(),
              boards: {},  // each video's storyboard by its address: null while it is fetched
              boardOf: {} };  // a keyframe id -> its video's storyboard address, once one showed it

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined && v !== false) node.setAttribute(k, v === true ? "" : v);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

function send(kind, payload = {}) {
  app.send("action", { kind, ...payload, at: Date.now() });
}

function cards() { return app.data ? app.data.cards : []; }
function indexOf(id) { return cards().findIndex((c) => c.id === id); }

// -- the grid -------------------------------------------------------------------------------------

function cardElement(c, index) {
  const images = el("div", { class: "images" }, ...c.images.map((image) => el("figure", {},
    el("img", { src: image.src, alt: image.caption || c.title, loading: "lazy",
                onerror: (e) => e.target.classList.add("missing") }),
    image.caption ? el("figcaption", { text: image.caption }) : null)));
  const text = el("div", { class: "text" }, el("b", { text: c.title + " " }));
  c.lines.forEach((line, i) => { if (i) text.append(el("br")); text.append(line); });
  text.append(...teamLines(c));
  const actions = el("div", { class: "actions" },
    el("button", { type: "button", "data-kind": "open", "aria-label": `Open hit ${c.title}`, text: "Open" }));
  if (c.feedback) {
    actions.append(
      el("button", { type: "button", "data-kind": "like", "aria-pressed": c.liked ? "true" : "false",
                     "aria-label": `Like hit ${c.title}`, title: "more like this", text: "Like" }),
      el("button", { type: "button", "data-kind": "dislike", "aria-pressed": c.disliked ? "true" : "false",
                     "aria-label": `Dislike hit ${c.title}`, title: "less like this", text: "Dislike" }));
  }
  actions.append(el("label", {}, el("input", { type: "checkbox", "data-kind": "pick", checked: c.picked,
                                               "aria-label": `Pick ${c.title}` }), " Pick", el("kbd", { text: "X" })));
  const node = el("div", { class: "card", "data-id": c.id, "data-index": index }, images, text, actions);
  return node;
}

function drawGrid(parentElement) {
  if (!app.grid) {
    app.grid = el("div", { class: "cards" });
    app.grid.addEventListener("click", (event) => {
      const holder = event.target.closest(".card");
      const target = event.target.closest("[data-kind]");
      if (!holder || !target) return;
      const id = Number(holder.dataset.id);
      const kind = target.dataset.kind;
      event.preventDefault();
      if (kind === "pick") {
        target.checked = !target.checked;  // shown at once; the export learns it from Python
        send("pick", { id });
        drawToolbar();
      } else if (kind === "open") {
        setCurrent(indexOf(id), false);
        open(id, true);
      } else {
        setCurrent(indexOf(id), false);
        send(kind, { id });
      }
    });
    parentElement.appendChild(app.grid);
  }
  app.grid.style.setProperty("--columns", app.data.columns);
  // A card whose content did not change keeps its element (and its decoded image).
  const kept = new Map();
  const children = cards().map((c, i) => {
    const signature = JSON.stringify([c, i, batchOutcome(c.id)]);
    const node = app.cards.get(signature) || cardElement(c, i);
    kept.set(signature, node);
    return node;
  });
  app.grid.replaceChildren(...children);
  app.cards = kept;
  markCurrent(false);
  drawToolbar();
  paintMarks();
}

function currentIndex() {
  return Math.max(0, indexOf(app.currentId));
}

function markCurrent(scroll) {
  const nodes = app.grid ? app.grid.children : [];
  for (const node of nodes) node.classList.toggle("current", Number(node.dataset.id) === app.currentId);
  const node = nodes[currentIndex()];
  if (scroll && node) node.scrollIntoView({ block: "nearest" });
}

function setCurrent(index, scroll = true) {
  if (index < 0 || index >= cards().length) return;
  app.currentId = cards()[index].id;
  markCurrent(scroll);
}

// -- the opened hit ---------------------------------------------------------------------------------

// `ranked`: opened from the grid or by J and K (a chain's card shows its events); else from the
// events or the strip, which keep the chain shown.
function open(id, ranked = false) {
  if (ranked) {
    const card = hitOf(id);
    app.chain = card && card.events.length ? id : null;
  }
  app.opened = id;
  app.confirm = null;
  drawViewer();
  setTimeout(() => ask(id), 0);  // drawn first: asking starts a rerun the page works through
}

function close() {
  app.opened = null;
  app.confirm = null;
  drawViewer();
}

// Ask Python for what the viewer shows of a keyframe (and of the next and previous hits, so J
// and K find theirs here), unless it came or was asked for already.
function ask(id) {
  const i = indexOf(id);
  const wanted = [id, ...(i >= 0 ? [cards()[i + 1], cards()[i - 1]].filter(Boolean).map((c) => c.id) : [])]
    .filter((k) => !(k in app.details) && !app.asked.has(`${app.data.language}:${k}`));
  if (!wanted.length) return;
  wanted.forEach((k) => app.asked.add(`${app.data.language}:${k}`));
  send("detail", { ids: wanted });
}

function step(by) {
  const i = app.opened === null ? currentIndex() : indexOf(app.opened);
  const next = Math.max(0, Math.min(cards().length - 1, (i < 0 ? currentIndex() : i) + by));
  setCurrent(next);
  if (app.opened !== null) open(cards()[next].id, true);
}

function viewerRoot() {
  if (!app.viewer) {
    const host = el("div", { id: "evr-opened-hit" });
    document.body.appendChild(host);
    const root = host.attachShadow({ mode: "open" });
    root.append(el("style", { text: app.data.viewer_css }));
    const backdrop = el("div", { class: "backdrop", onclick: (e) => { if (e.target === backdrop) close(); } });
    const panel = el("div", { class: "panel", role: "dialog", "aria-modal": "true", "aria-label": "Opened hit" });
    backdrop.append(panel);
    root.append(backdrop);
    app.viewer = { host, backdrop, panel, video: null, src: null, start: null };
  }
  return app.viewer;
}

function hitOf(id) {
  const i = indexOf(id);
  return i >= 0 ? cards()[i] : null;
}

function drawViewer() {
  const v = viewerRoot();
  if (app.opened === null) {
    v.backdrop.classList.remove("shown");
    if (v.video) v.video.pause();
    v.drawn = null;
    return;
  }
  v.backdrop.classList.add("shown");
  const id = app.opened;
  const hit = hitOf(id);
  const detail = app.details[id] || null;
  // Drawn again only when what it shows changed: a rerun for something else keeps its fields
  // (a half-typed answer keeps its focus).
  const drawn = JSON.stringify([id, app.chain, hit, detail, app.data.submit, app.form.onlyShot, cards().length]);
  if (v.drawn === drawn) return;
  v.drawn = drawn;
  const rank = hit ? `Hit #${hit.rank} of ${cards().length}` : "A neighbouring keyframe (picked in the strip)";
  const head = detail ? detail.heading : (hit ? hit.heading : "");  // the card's own until the details come
  const buttons = el("div", { class: "buttons" },
    button("Previous hit", "K", () => step(-1)),
    button("Next hit", "J", () => step(1)));
  if (hit && hit.feedback) {
    buttons.append(button("Like", "L", () => send("like", { id }), hit.liked),
                   button("Dislike", "D", () => send("dislike", { id }), hit.disliked));
  }
  const notIt = button("Not it", "N", () => toggleNotIt(id), isNotIt(id));
  notIt.dataset.kind = "not-it";
  notIt.title = "checked, not it: every browser on this index sees it";
  buttons.append(notIt, button("Find similar frames", "", () => { close(); send("similar", { id }); }),
                 button("Close", "Esc", close));
  const left = el("div", { class: "left" }, player(detail, hit));
  if (detail && detail.shot) left.append(shotLine(detail));
  const right = el("div", { class: "right" }, submitPanel(id, hit, detail));
  const lower = el("div", { class: "lower" });
  if (detail) {
    const chain = app.chain !== null ? hitOf(app.chain) : null;
    if (chain) lower.append(strip("The events of the chain: click one to play it",
                                  chain.events.map((e) => ({ ...e, here: e.id === id }))));
    if (detail.strip.length > 1) lower.append(strip("Keyframes around it: click one to jump there", detail.strip));
    const about = el("div", { class: "about" }, el("b", { text: "What happens here" }), el("p", { text: detail.summary }),
      button("Read aloud", "", (e) => { e.currentTarget.textContent = "Reading it aloud..."; send("speak", { id }); }));
    if (detail.audio) about.append(el("audio", { controls: true, src: detail.audio, autoplay: true }),
                                   el("p", { class: "caption", text: detail.spoken_by }));
    lower.append(about);
    if (detail.found) {
      lower.append(el("div", { class: "found" }, el("b", { text: "What the analyzers found" }),
        el("img", { src: detail.found, alt: "what the analyzers found" }), el("p", { class: "caption", text: detail.found_caption })));
    }
  } else {
    lower.append(el("p", { class: "caption", text: "Loading the details of this keyframe..." }));
  }
  // A hit's card knows it before its details, and so does a keyframe picked in a storyboard.
  const board = (detail && detail.board) || (hit && hit.board) || app.boardOf[id];
  if (board) lower.insertBefore(storyboard(board, id), lower.querySelector(".about"));
  const where = detail && detail.where ? ` · ${detail.where}` : "";
  const mark = el("p", { class: "team-mark" });
  paintMark(mark, id);
  const top = [buttons, el("h5", { text: head }), el("p", { class: "caption", text: rank + where }), mark];
  if (detail && detail.watch_url) top.push(el("a", { href: detail.watch_url, target: "_blank", rel: "noopener noreferrer", text: "Watch online" }));
  v.panel.replaceChildren(...top, el("div", { class: "upper" }, left, right), lower);
}

function redraw() {
  if (app.viewer) app.viewer.drawn = null;
  drawViewer();
}

function button(label, key, onclick, pressed = false) {
  return el("button", { type: "button", "aria-pressed": pressed ? "true" : "false", onclick },
            label, key ? el("kbd", { text: key }) : null);
}

function player(detail, hit) {
  const v = viewerRoot();
  if (!v.video) {
    v.video = el("video", { controls: true, preload: "auto", playsinline: true });
    v.video.addEventListener("loadedmetadata", () => { v.video.currentTime = v.start; });
    v.video.addEventListener("timeupdate", () => {
      if (v.loop && v.video.currentTime >= v.loop[1]) v.video.currentTime = v.loop[0];
    });
    v.said = el("p", { class: "error" });
    v.video.addEventListener("error", () => { if (v.src) v.said.textContent = "The browser cannot play this video."; });
  }
  const wrap = el("div", { class: "player" }, v.video, v.said);
  if (!detail) {
    v.video.removeAttribute("poster");
    if (hit) v.video.poster = hit.images[0].src;
    return wrap;
  }
  if (detail.video_error) {
    v.said.textContent = detail.video_error;
    v.video.removeAttribute("src"); v.src = null;
    return wrap;
  }
  v.said.textContent = "";
  const looping = app.form.onlyShot && detail.shot && !detail.whole;
  v.loop = looping ? detail.shot : null;
  const start = looping ? detail.shot[0] : detail.time;
  if (v.src !== detail.video) {
    v.src = detail.video;
    v.start = start;
    v.video.src = detail.video;  // loadedmetadata moves it to the start
  } else if (v.start !== start) {
    v.start = start;
    v.video.currentTime = start;
  }
  return wrap;
}

function shotLine(detail) {
  const line = el("div", { class: "shot" }, el("span", { class: "caption", text: detail.shot_label }));
  if (!detail.whole) {
    const box = el("input", { type: "checkbox", checked: app.form.onlyShot, "aria-label": "Play only this shot",
                              onchange: (e) => { app.form.onlyShot = e.target.checked; app.viewer.start = null; redraw(); } });
    line.append(el("label", { title: "from the shot's first frame to its last, in a loop" }, box, " Play only this shot"));
  }
  return line;
}

function strip(caption, items) {
  const row = el("div", { class: "strip" });
  for (const item of items) {
    row.append(el("button", { type: "button", class: item.here ? "here" : "", title: item.tip,
                              "aria-label": `Keyframe at ${item.label}`,
                              onclick: () => { if (!item.here) open(item.id); } },
      el("img", { src: item.src, alt: "", loading: "lazy" }), el("span", { text: item.label })));
  }
  return el("div", {}, el("p", { class: "caption", text: caption }), row);
}

// -- submitting -------------------------------------------------------------------------------------

function submitPanel(id, hit, detail) {
  const s = app.data.submit;
  const box = el("div", { class: "submit" }, el("b", { text: "Submit to DRES" }));
  if (!s.ready) {
    box.append(el("p", { class: "caption", text: s.why }));
    return box;
  }
  if (!detail) {
    box.append(el("p", { class: "caption", text: "..." }));
    return box;
  }
  // The task DRES says runs picks the kind of answer, where its type says it (the sidebar's clock).
  const preset = s.task && s.task.kind && (s.task.kind !== "trake" || detail.chain) ? s.task.kind : detail.task;
  const form = app.form[id] || (app.form[id] = { task: preset, answer: "", from: detail.span[0], to: detail.span[1] });
  if (s.task_line) box.append(el("p", { class: "caption", text: s.task_line }));
  const tasks = el("div", { class: "tasks", role: "radiogroup", "aria-label": "Task" });
  for (const task of s.tasks) {
    if (task === "trake" && !detail.chain) continue;
    tasks.append(el("label", {}, el("input", { type: "radio", name: `task-${id}`, value: task, checked: form.task === task,
      onchange: () => { form.task = task; app.confirm = null; redraw(); } }), ` ${task.toUpperCase()}`));
  }
  box.append(tasks);
  if (form.task === "qa") {
    box.append(el("label", { class: "field" }, "Answer (QA) ", el("input", { type: "text", value: form.answer,
      "aria-label": "Answer (QA)", oninput: (e) => { form.answer = e.target.value; app.confirm = null; refreshSubmit(id); } })));
  }
  if (form.task === "kis") {
    box.append(el("div", { class: "span" },
      numberField("Answer from (s)", form.from, (v) => { form.from = v; app.confirm = null; refreshSubmit(id); }),
      numberField("Answer to (s)", form.to, (v) => { form.to = v; app.confirm = null; refreshSubmit(id); })));
  }
  box.append(el("div", { class: "send" }));
  fillSend(box.querySelector(".send"), id, detail, form);
  return box;
}

function numberField(label, value, set) {
  return el("label", { class: "field" }, label + " ", el("input", { type: "number", min: "0", step: "0.5", value: String(value),
    "aria-label": label, oninput: (e) => set(e.target.value === "" ? NaN : Number(e.target.value)) }));
}

function refreshSubmit(id) {
  const holder = app.viewer && app.viewer.panel.querySelector(".send");
  const detail = app.details[id];
  if (holder && detail) fillSend(holder, id, detail, app.form[id]);
}

// What would be sent, the Submit button (greyed with the reason when the answer cannot be right),
// the confirmation, and the verdict.
function fillSend(holder, id, detail, form) {
  const s = app.data.submit;
  let answer = null, problem = null;
  if (form.task === "kis") {
    if (!(form.from >= 0) || !(form.to >= 0)) problem = "The span's From and To must be numbers of 0 or more.";
    else if (form.to < form.from) problem = `The span runs backwards: From ${form.from} s is after To ${form.to} s.`;
    else answer = `${detail.video_id} ${Math.round(form.from * 1000)}-${Math.round(form.to * 1000)} ms`;
  } else if (form.task === "qa") {
    const text = form.answer.trim().split(/\s+/).join(" ");
    if (!text) problem = "Type the answer to send.";
    else if (s.qa_format === "text") answer = text;
    else answer = `QA-${text}-${detail.video_id}-${Math.round(detail.time * 1000)}`;
  } else {
    answer = detail.trake;
  }
  const parts = [];
  const submit = el("button", { type: "button", class: "primary", disabled: problem !== null,
                                "aria-label": "Submit", onclick: () => { app.confirm = { id, answer }; refreshSubmit(id); } },
                    problem ? "Submit" : `Submit ${answer}`, el("kbd", { text: "S" }));
  parts.push(submit);
  if (problem) parts.push(el("p", { class: "error", text: problem }));
  if (app.confirm && app.confirm.id === id && app.confirm.answer === answer && !problem) {
    const again = el("input", { type: "checkbox", "aria-label": "Send it even if it was sent before" });
    const force = el("input", { type: "checkbox", "aria-label": s.force_label });
    parts.push(el("div", { class: "confirm" },
      el("p", { class: "warning", text: `Send ${answer} to ${s.evaluation}? A wrong answer costs points.` }),
      el("label", {}, again, " Send it even if it was sent before"),
      el("label", {}, force, ` ${s.force_label}`),
      el("div", { class: "row" },
        el("button", { type: "button", class: "primary", text: "Confirm", onclick: () => {
          app.confirm = null;
          // `shown`: the answer as this button says it, which the verdict comes back under.
          send("submit", { id, task: form.task, answer: form.answer, span: [form.from, form.to], again: again.checked,
                           force: force.checked, shown: answer });
          holder.replaceChildren(el("p", { class: "caption", text: "Sending..." }));
        } }),
        el("button", { type: "button", text: "Cancel", onclick: () => { app.confirm = null; refreshSubmit(id); } }))));
  }
  const said = detail.said;
  if (said && said.answer === answer && !(app.confirm && app.confirm.id === id)) {
    parts.push(el("p", { class: said.kind, text: said.text }));
  }
  holder.replaceChildren(...parts);
}

// -- keys ---------------------------------------------------------------------------------------------

function onKey(event) {
  if (!app.data || event.ctrlKey || event.metaKey || event.altKey) return;
  const target = event.composedPath()[0];
  if (target && (["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName) || target.isContentEditable)) return;
  const key = event.key.toLowerCase();
  const viewing = app.opened !== null;
  if (viewing && event.key === "Escape") { close(); event.preventDefault(); return; }
  if (!cards().length) return;
  const current = viewing ? app.opened : cards()[currentIndex()].id;
  const hit = hitOf(current);
  const act = {
    [KEYS.next]: () => step(1), [KEYS.previous]: () => step(-1),
    [KEYS.open]: () => { if (!viewing) open(current); },
    [KEYS.like]: () => { if (hit && hit.feedback) send("like", { id: current }); },
    [KEYS.dislike]: () => { if (hit && hit.feedback) send("dislike", { id: current }); },
    [KEYS.pick]: () => {
      const box = app.grid && app.grid.querySelector(`.card[data-id="${current}"] input[data-kind=pick]`);
      if (box) box.click();
    },
    [KEYS.notIt]: () => toggleNotIt(current),
    [KEYS.submit]: () => {
      const b = viewing && app.viewer.panel.querySelector(".send button.primary");
      if (b && !b.disabled) b.click();
    },
  }[key];
  if (act) { act(); event.preventDefault(); }
}

// -- Streamlit's entry point ------------------------------------------------------------------------

export default function (component) {
  const { data, setTriggerValue, parentElement } = component;
  const first = app.data === null;
  const before = app.data;
  app.data = data;
  app.send = setTriggerValue;
  if (first) document.addEventListener("keydown", onKey);
  if (!app.grid || !parentElement.contains(app.grid)) app.grid = null;
  // A new query (the server's version moved): its first card current, nothing open. Another
  // page, a like: the current and the opened hit stay the same keyframes, wherever they rank.
  if (!before || before.version !== data.version) {
    app.currentId = data.cards.length ? data.cards[0].id : null;
    app.opened = null;
    app.chain = null;
  }
  if (!before || before.version !== data.version || before.language !== data.language) {
    app.details = {};  // a summary is in the summary language
    app.asked = new Set();
  }
  for (const [k, v] of Object.entries(data.details)) app.details[k] = v;
  if (indexOf(app.currentId) < 0 && data.cards.length) app.currentId = data.cards[0].id;
  drawGrid(parentElement);
  if (app.opened !== null) {
    ask(app.opened);  // its details, or its neighbours', may still be missing
    const i = indexOf(app.opened);
    if (i >= 0) setCurrent(i, false);
  }
  drawViewer();
  parentElement.host && parentElement.host.setAttribute("data-renders",
    String(Number(parentElement.host.getAttribute("data-renders") || 0) + 1));
}
