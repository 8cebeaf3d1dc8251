// The first screen's only script, inline at the end of the page (allowed by the hash of its
// text, like boot.js): it makes the page's static sign-in form usable without waiting for a
// fetch, and then loads the application (the module named by <meta name="autoglm-app">),
// after the first frame, so that its fetch, compile and run are not on the way to the form.
//
// A submit before the application has arrived is held (the button says so) and handed to the
// application, which draws the same form over this one and submits it again. A tab that
// holds a credential (boot.js marked it), or a page without the form (authentication off),
// loads the application at once: its first screen is the application's.
(() => {
  const src = document.querySelector('meta[name="autoglm-app"]').content;
  let app = null;
  const load = () => {
    app = app || import(src);
    return app;
  };
  const form = document.querySelector('#app > .signin[data-static] form');
  if (!form || 'session' in document.documentElement.dataset) {
    load();
    return;
  }
  const button = form.querySelector('button[type=submit]');
  let held = false;
  const off = new AbortController();
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    if (held || !form.elements.token.value.trim()) return;
    held = true;
    button.disabled = true;
    button.textContent = 'Signing in…';
    load().catch(() => {
      held = false;
      button.disabled = false;
      button.textContent = 'Sign in';
      const p = form.querySelector('p');
      p.textContent = 'The console could not be loaded from the server: reload the page to try again.';
      p.setAttribute('role', 'alert');
    });
  }, { signal: off.signal });
  // The application took the form over (app.jsx): its handler answers from now on.
  document.addEventListener('autoglm:app', () => {
    off.abort();
    if (held) form.requestSubmit();
  }, { once: true });
  button.disabled = false;
  requestAnimationFrame(() => {
    // The frame that draws the usable form: the load-time measurements' end.
    performance.mark('autoglm:ready');
    setTimeout(load, 0);
  });
})();
