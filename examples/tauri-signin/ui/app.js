// The example's whole front end: the plugin's API on window.__TAURI__.lanyard.
const lanyard = window.__TAURI__.lanyard;
const $ = (id) => document.getElementById(id);

function show(person) {
  $('signed-out').hidden = Boolean(person);
  $('signed-in').hidden = !person;
  if (!person) return;
  $('who').textContent = `Hi, ${person.name ?? person.subject}`;
  $('email').textContent = person.email ?? '';
  if (person.picture) $('picture').src = person.picture;
}

async function run(action) {
  $('error').textContent = '';
  try {
    await action();
  } catch (e) {
    $('error').textContent = e.message ?? String(e);
  }
}

$('sign-in').addEventListener('click', () => run(lanyard.signIn));
$('sign-out').addEventListener('click', () => run(lanyard.signOut));
lanyard.onChange(show);
lanyard.identity().then(show, (e) => { $('error').textContent = e.message; });
