// A tiny element builder: h('p', {class: 'muted'}, 'text', child). Text is always set as
// text, never as HTML: claims come from providers and are not trusted.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (key === 'style') {
      for (const [prop, v] of Object.entries(value)) {
        if (prop.startsWith('--')) el.style.setProperty(prop, v);
        else el.style[prop] = v;
      }
    }
    else if (value === true) el.setAttribute(key, '');
    else el.setAttribute(key, String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/**
 * Puts `content` in `parent`, unless what is there is already equal to it. A redraw that
 * changes nothing then leaves the elements in place, so a press under way on one of them
 * is not lost (a click needs the same element under the button's press and its release).
 * Equal nodes have equal handlers only when everything a handler reads is in the
 * attributes: give elements the data (`data-account`) their handlers act on.
 */
export function show(parent, content) {
  if (parent.childNodes.length === 1 && parent.firstChild.isEqualNode(content)) return;
  parent.replaceChildren(content);
}

/** "59 min", "1 h 5 min", "40 s", or "expired". */
export function remaining(expiresAt) {
  const left = Math.round(expiresAt - Date.now() / 1000);
  if (left <= 0) return 'expired';
  if (left < 90) return `${left} s`;
  const min = Math.round(left / 60);
  if (min < 90) return `${min} min`;
  return `${Math.floor(min / 60)} h ${min % 60} min`;
}

export function when(seconds) {
  return new Date(seconds * 1000).toLocaleString();
}

export function errorBox(failure) {
  const f = failure ?? {};
  return h('div', { class: 'error', role: 'alert' },
    f.message ?? String(failure),
    f.hint ? h('span', { class: 'hint' }, `What to do: ${f.hint}`) : null);
}
