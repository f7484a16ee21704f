// The app's commands and events, through Tauri's global API (withGlobalTauri): no bundler.
// Every command resolves with its value or rejects with {message, hint}.

const tauri = window.__TAURI__;

export function call(command, args = {}) {
  return tauri.core.invoke(command, args);
}

/** Calls `handler` with each of the model's events (see lanyard::desktop::UiEvent). */
export function onEvent(handler) {
  return tauri.event.listen('lanyard://event', (e) => handler(e.payload));
}
