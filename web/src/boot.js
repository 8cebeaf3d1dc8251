// Runs in the page's head, before anything is drawn (a small classic script, so it blocks
// the parser only for itself): it sets the theme, so that the first frame already has the
// right colours, and marks a tab that holds a credential, whose first screen is not the
// static sign-in form of index.html but the application (see app.jsx), so that the form does
// not flash by. The application itself is a module, run when the page has been parsed.
(() => {
  const root = document.documentElement;
  let theme = '';
  try { theme = localStorage.getItem('autoglm.theme') || ''; } catch { /* no storage */ }
  if (theme !== 'light' && theme !== 'dark') {
    theme = window.matchMedia && matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
  }
  root.dataset.theme = theme;
  try {
    if (sessionStorage.getItem('autoglm.token')) root.dataset.session = '';
  } catch { /* no storage: no stored credential */ }
})();
