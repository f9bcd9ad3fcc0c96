// Stitch's web UI: the shell (header, theme, keyboard help) and the client-side router.
//
// Routes: /  and /search (search), /trace/{id}[?span=], /services, /services/{name}.

import { h, link, navigate, setNavigateHandler } from './lib.js';
import { searchPage } from './search.js';
import { tracePage } from './trace.js';
import { servicesPage, servicePage } from './services.js';

const main = document.getElementById('main');
let current = null; // {key, ctl}

// ----- theme -----------------------------------------------------------------------------------

const media = window.matchMedia('(prefers-color-scheme: dark)');

function applyTheme() {
  const chosen = localStorage.getItem('stitch-theme');
  const resolved = chosen === 'light' || chosen === 'dark' ? chosen : media.matches ? 'dark' : 'light';
  const root = document.documentElement;
  if (chosen === 'light' || chosen === 'dark') root.dataset.theme = chosen;
  else delete root.dataset.theme;
  root.dataset.resolvedTheme = resolved;
  themeBtn.textContent = resolved === 'dark' ? '☀' : '☾';
  themeBtn.title = `Switch to the ${resolved === 'dark' ? 'light' : 'dark'} theme`;
  themeBtn.setAttribute('aria-label', themeBtn.title);
  window.dispatchEvent(new Event('stitch-theme'));
}

const themeBtn = h('button', {
  class: 'icon-btn theme-toggle', type: 'button', onclick: () => {
    const resolved = document.documentElement.dataset.resolvedTheme;
    localStorage.setItem('stitch-theme', resolved === 'dark' ? 'light' : 'dark');
    applyTheme();
  },
});
media.addEventListener('change', applyTheme);

// ----- header ----------------------------------------------------------------------------------

const traceInput = h('input', {
  type: 'search', class: 'trace-lookup', placeholder: 'Trace id', 'aria-label': 'Open a trace by id',
  spellcheck: 'false', autocomplete: 'off',
});
const lookupForm = h('form', {
  class: 'lookup', onsubmit: (e) => {
    e.preventDefault();
    const id = traceInput.value.trim().toLowerCase();
    if (/^[0-9a-f]{1,32}$/.test(id)) {
      traceInput.value = '';
      traceInput.blur();
      navigate(`/trace/${id}`);
    } else {
      traceInput.setCustomValidity('A trace id is 1 to 32 hex digits');
      traceInput.reportValidity();
    }
  },
}, traceInput);
traceInput.addEventListener('input', () => traceInput.setCustomValidity(''));

const navSearch = link('/search', 'Search');
const navServices = link('/services', 'Services');
const help = h('dialog', { class: 'help', 'aria-label': 'Keyboard shortcuts' },
  h('h2', null, 'Keyboard'),
  h('table', null, h('tbody', null, [
    ['j / ↓, k / ↑', 'next / previous span'],
    ['Enter, Space', 'expand or collapse the span or group'],
    ['→ / ←', 'expand / collapse, or go to the parent'],
    ['/', 'find spans (on a trace), focus the form (on search)'],
    ['n / N', 'next / previous match'],
    ['f, s', 'findings, statistics'],
    ['Home / End', 'first / last row'],
    ['Esc', 'clear the highlight, leave a field'],
    ['?', 'this help'],
  ].map(([k, v]) => h('tr', null, h('th', null, h('kbd', null, k)), h('td', null, v))))),
  h('form', { method: 'dialog' }, h('button', { class: 'btn' }, 'Close')));
const helpBtn = h('button', { class: 'icon-btn', type: 'button', title: 'Keyboard shortcuts (?)', 'aria-label': 'Keyboard shortcuts', onclick: () => help.showModal() }, '?');

document.getElementById('header').replaceChildren(
  link('/search', h('span', { class: 'brand' }, h('img', { src: document.querySelector('link[rel=icon]').href, alt: '', width: 22, height: 22 }), 'Stitch')),
  h('nav', null, navSearch, navServices),
  h('span', { class: 'spacer' }),
  lookupForm, helpBtn, themeBtn);
document.body.append(help);
applyTheme();

// ----- routing ---------------------------------------------------------------------------------

function route() {
  const path = location.pathname.replace(/\/+$/, '') || '/';
  let m;
  if (path === '/' || path === '/search') return { key: 'search', page: 'search', make: () => searchPage(main) };
  if ((m = /^\/trace\/([^/]+)$/.exec(path))) {
    const id = decodeURIComponent(m[1]);
    return { key: `trace:${id}`, page: 'trace', make: () => tracePage(main, id) };
  }
  if (path === '/services') return { key: `services:${location.search}`, page: 'services', make: () => servicesPage(main) };
  if ((m = /^\/services\/([^/]+)$/.exec(path))) {
    const name = decodeURIComponent(m[1]);
    return { key: `service:${name}`, page: 'services', make: () => servicePage(main, name) };
  }
  return {
    key: 'missing', page: '', make: () => {
      main.replaceChildren(h('section', { class: 'page' }, h('div', { class: 'message error' },
        h('p', null, 'There is no page here.'), h('p', null, link('/search', 'Search traces'), ' or ', link('/services', 'see the services'), '.'))));
      return {};
    },
  };
}

function render() {
  const r = route();
  navSearch.classList.toggle('active', r.page === 'search');
  navServices.classList.toggle('active', r.page === 'services');
  if (current && current.key === r.key && current.ctl.onUrl?.()) return;
  current?.ctl.destroy?.();
  window.scrollTo(0, 0);
  current = { key: r.key, ctl: r.make() ?? {} };
}

setNavigateHandler(render);
window.addEventListener('popstate', render);

// In-app links navigate without reloading.
document.addEventListener('click', (e) => {
  if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  const a = e.target.closest('a[href]');
  if (!a || a.target || a.hasAttribute('download')) return;
  const href = a.getAttribute('href');
  if (!href || href.startsWith('#')) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin || url.pathname.startsWith('/api/') || url.pathname.startsWith('/ui/')) return;
  e.preventDefault();
  navigate(url.pathname + url.search);
});

// Keyboard: the page first, then the global keys.
document.addEventListener('keydown', (e) => {
  if (e.ctrlKey || e.metaKey || e.altKey) return;
  const t = e.target;
  const typing = t instanceof HTMLInputElement || t instanceof HTMLTextAreaElement || t instanceof HTMLSelectElement || t?.isContentEditable;
  if (typing) {
    if (e.key === 'Escape') t.blur();
    return;
  }
  if (help.open) return;
  if (e.key === '?') {
    help.showModal();
    e.preventDefault();
    return;
  }
  if (t instanceof HTMLButtonElement && (e.key === 'Enter' || e.key === ' ')) return;
  if (current?.ctl.onKey?.(e)) {
    e.preventDefault();
    return;
  }
  if (e.key === '/') {
    traceInput.focus();
    e.preventDefault();
  }
});

render();
