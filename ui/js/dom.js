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
