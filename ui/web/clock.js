// The running task's clock (the sidebar's, ui/contest/panel.py): the time left counts down here,
// every quarter second, from what DRES said when the sidebar last asked (every few seconds); each
// new answer sets it right. Text is set as text, never as HTML.

const clocks = new WeakMap();  // each mounted clock's line, what it shows, and since when

function tick(clock) {
  const d = clock.data;
  if (!d.running) {
    clock.line.textContent = d.text;
    clock.line.classList.remove("late");
    return;
  }
  const left = Math.max(0, Math.round(d.time_left_s - (performance.now() - clock.since) / 1000));
  const shown = `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
  clock.line.textContent = `${d.text} · ${shown} left`;
  clock.line.dataset.left = String(left);
  clock.line.classList.toggle("late", left <= 30);
}

export default function (component) {
  const { data, parentElement } = component;
  let clock = clocks.get(parentElement);
  if (!clock) {
    const line = document.createElement("p");
    line.className = "task-clock";
    line.setAttribute("role", "timer");
    line.setAttribute("aria-label", "Task clock");
    parentElement.appendChild(line);
    clock = { line, data: null, since: 0 };
    clock.timer = setInterval(() => tick(clock), 250);
    clocks.set(parentElement, clock);
  }
  if (!clock.data || clock.data.stamp !== data.stamp) {
    clock.data = data;
    clock.since = performance.now();
  }
  tick(clock);
  return () => { clearInterval(clock.timer); clocks.delete(parentElement); };
}
