// The opened hit's storyboard (loaded after results.js, in the same module). The whole video,
// shot by shot (the server's storyboard route, fetched once per video): the
// opened keyframe's shot marked and scrolled into view; a click moves the player there at once
// and opens that keyframe. Its thousands of buttons are built once per video and kept: a redraw of
// the dialog moves the same node and only moves the marks.
function storyboard(address, id) {
  const board = app.boards[address];
  if (board === undefined) {
    app.boards[address] = null;
    fetch(address).then((r) => (r.ok ? r.json() : Promise.reject(r.status)))
      .then((got) => { app.boards[address] = { ...got, node: boardNode(got, address) }; },
            () => { app.boards[address] = { failed: true }; })
      .then(redraw);
  }
  if (!board || board.failed) {
    return el("div", { class: "board", role: "region", "aria-label": "The whole video" },
      el("p", { class: "caption", text: board ? "The whole video could not be read." : "Loading the whole video..." }));
  }
  const box = board.node;
  for (const old of box.querySelectorAll(".here")) old.classList.remove("here");
  const button = box.querySelector(`button[data-id="${id}"]`);
  if (button) {
    button.classList.add("here");
    button.parentElement.classList.add("here");
    requestAnimationFrame(() => { box.scrollTop = button.parentElement.offsetTop; });  // the board is their offset parent
  }
  return box;
}

function boardNode(board, address) {
  const box = el("div", { class: "board", role: "region", "aria-label": "The whole video" },
    el("p", { class: "caption", text: `The whole video, ${board.keyframes} keyframes by shot: click one to go there` }));
  for (const shot of board.shots) {
    const group = el("div", { class: "board-shot" }, el("p", { class: "caption", text: shot.label }));
    for (const k of shot.keyframes) {
      app.boardOf[k.id] = address;
      group.append(el("button", { type: "button", "data-id": String(k.id), title: `keyframe ${k.id}, frame ${k.frame}`,
                                  "aria-label": `Storyboard keyframe at ${k.label}`,
                                  onclick: (e) => { if (!e.currentTarget.classList.contains("here")) { seek(k.time); open(k.id); } } },
        el("img", { src: k.src, alt: "", loading: "lazy" }), el("span", { text: k.label })));
    }
    box.append(group);
  }
  return box;
}

// The player to this time now, before the keyframe's details come.
function seek(seconds) {
  const v = app.viewer;
  if (!v || !v.video) return;
  v.start = seconds;
  if (v.video.readyState >= 1) v.video.currentTime = seconds;
}
