// The theme's Font Awesome script (deferred) replaces every <i class="fa ..."> with an <svg> by default. ipywidgets'
// Play button keeps a handle on its <i> and sets its className on every change; once the <i> is gone, each change
// throws and the layer sliders stop driving their figures. "nest" draws the <svg> inside the <i> instead, so the
// theme's icons still show and the widget's <i> stays. Loaded without defer: it runs before Font Awesome reads its
// configuration.
window.FontAwesomeConfig = Object.assign(window.FontAwesomeConfig || {}, { autoReplaceSvg: "nest" });
