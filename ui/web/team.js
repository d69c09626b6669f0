// The team's side of the results (loaded after results.js, in the same module): the picked hits
// sent to DRES at once, and the marks every browser on this index sees. A mark ("sent by Ann:
// CORRECT", "not it: Bo") is kept in the index's database by whoever made it (ui/actions.py);
// each browser asks the server's marks route for the marks made since the last it saw, twice
// a second, and paints them on the cards and in the opened hit without a rerun.

const MARKS_EVERY_MS = 500;  // a teammate's mark shows within a second, even on a busy machine
const team = { marks: new Map(), seq: 0, polling: false, confirm: false, force: false, toolbar: null };

// -- the marks --------------------------------------------------------------------------------------

function pollMarks() {
  if (team.polling || !app.data) return;
  team.polling = true;
  fetch(`${app.data.marks}?since=${team.seq}`, { cache: "no-store" })
    .then((r) => (r.ok ? r.json() : null))
    .then((got) => { if (got && got.marks.length) { got.marks.forEach(applyMark); team.seq = got.seq; paintMarks(); } })
    .catch(() => {})  // the server restarting: the next second asks again
    .finally(() => { team.polling = false; });
}

function applyMark(m) {
  const mark = team.marks.get(m.keyframe_id) || { sent: null, notIt: null };
  if (m.kind === "submitted") mark.sent = { verdict: m.verdict, who: m.who };
  else if (m.kind === "not_it") mark.notIt = m.who;
  else if (m.kind === "not_it_undone") mark.notIt = null;
  team.marks.set(m.keyframe_id, mark);
}

function markText(id) {
  const mark = team.marks.get(id);
  if (!mark) return { text: "", kind: "" };
  const parts = [];
  if (mark.sent) parts.push(`sent by ${mark.sent.who}: ${mark.sent.verdict || "no verdict"}`);
  if (mark.notIt) parts.push(`not it: ${mark.notIt}`);
  const kind = mark.sent && mark.sent.verdict === "CORRECT" ? "correct"
    : (mark.sent && mark.sent.verdict === "WRONG") || mark.notIt ? "wrong" : "sent";
  return { text: parts.join(" · "), kind };
}

function paintMark(node, id) {
  const { text, kind } = markText(id);
  node.textContent = text;
  node.className = `team-mark ${text ? kind : ""}`;
}

function paintMarks() {
  for (const card of app.grid ? app.grid.children : []) {
    const holder = card.querySelector(".team-mark");
    if (holder) paintMark(holder, Number(card.dataset.id));
  }
  const opened = app.viewer && app.opened !== null ? app.viewer.panel.querySelector(".team-mark") : null;
  if (opened) paintMark(opened, app.opened);
  const toggle = app.viewer && app.viewer.panel.querySelector("button[data-kind=not-it]");
  if (toggle) toggle.setAttribute("aria-pressed", isNotIt(app.opened) ? "true" : "false");
}

function isNotIt(id) {
  const mark = team.marks.get(id);
  return Boolean(mark && mark.notIt);
}

function toggleNotIt(id) {
  send("not_it", { id, on: !isNotIt(id) });
}

function batchOutcome(id) {
  return (app.data.batch && app.data.batch.outcomes[String(id)]) || null;
}

// What a card shows of the team, and of this browser's last "Submit picked".
function teamLines(c) {
  const lines = [el("p", { class: "team-mark" })];
  paintMark(lines[0], c.id);
  const outcome = batchOutcome(c.id);
  if (outcome) lines.push(el("p", { class: `outcome ${outcome.outcome.toLowerCase()}`, title: outcome.text,
                                     text: `Submitted: ${outcome.outcome}` }));
  return lines;
}

// -- the picked hits, sent at once ------------------------------------------------------------------

function pickedIds() {
  return [...(app.grid ? app.grid.querySelectorAll("input[data-kind=pick]:checked") : [])]
    .map((box) => Number(box.closest(".card").dataset.id));
}

// Above the grid: "Submit N picked", the force checkbox, the confirmation, what came of the last.
function drawToolbar() {
  const parentElement = app.grid.parentNode;
  if (!team.toolbar || !parentElement.contains(team.toolbar)) {
    team.toolbar = el("div", { class: "toolbar", role: "group", "aria-label": "Picked hits" });
    parentElement.insertBefore(team.toolbar, app.grid);
  }
  if (!team.timer) {
    team.timer = setInterval(pollMarks, MARKS_EVERY_MS);
    pollMarks();
  }
  const s = app.data.submit;
  const n = pickedIds().length;
  const parts = [];
  const submit = el("button", { type: "button", "aria-label": "Submit picked", disabled: !s.ready || !n,
                                title: s.ready ? "each picked hit as its own KIS answer" : s.why,
                                onclick: () => { team.confirm = true; drawToolbar(); } },
                    `Submit ${n} picked`);
  parts.push(submit);
  const force = el("input", { type: "checkbox", checked: team.force, "aria-label": s.force_label,
                              onchange: (e) => { team.force = e.target.checked; } });
  parts.push(el("label", {}, force, ` ${s.force_label}`));
  if (team.confirm && n && s.ready) {
    parts.push(el("span", { class: "warning", text: `Send ${n} answers to ${s.evaluation}? Each wrong one costs points.` }),
      el("button", { type: "button", class: "primary", text: "Send them", onclick: () => {
        team.confirm = false;
        send("submit_picked", { ids: pickedIds(), force: team.force });
        team.toolbar.replaceChildren(el("span", { class: "caption", text: `Sending ${n} answers...` }));
      } }),
      el("button", { type: "button", text: "Cancel", onclick: () => { team.confirm = false; drawToolbar(); } }));
  } else {
    team.confirm = false;
  }
  if (app.data.batch) parts.push(el("p", { class: "batch-said", text: app.data.batch.said }));
  team.toolbar.replaceChildren(...parts);
}
