// Classic-notebook extension, installed into .venv by `make venv`, that lets TFMA's widgets render
// after one Run All. Two fixes, each for a bug outside this project:
//
// 1. TFMA 0.47.1: every TFMA widget view loads nbextensions/tensorflow_model_analysis/
//    vulcanized_tfma.js with a plain <script> tag. In that bundle, d3-tip's UMD wrapper sees
//    require.js's `define.amd` and calls an anonymous define(), which require.js rejects on its
//    next require() ("Mismatched anonymous define() module"): that require() is the one loading the
//    next TFMA widget's model, which then never renders (the time series after the slicing
//    metrics). The bundle is no require.js module, so `define.amd` is hidden while that one script
//    runs: d3-tip takes its browser-global branch (window.d3.tip), as in JupyterLab and Kubeflow.
//
// 2. widgetsnbextension 3.6: once the widget manager has asked a new kernel for its widgets, it
//    re-renders every cell that already shows a widget. A Run All started before that answer
//    (kernel still starting) has rendered live views by then; the re-render removes them, and the
//    removal blanks the output's model id, so the cells end up empty. Cells whose widget views are
//    live need no re-render: skip them.
define(["base/js/namespace"], function (Jupyter) {
  "use strict";

  var BUNDLE = /\/nbextensions\/tensorflow_model_analysis\/vulcanized_tfma\.js(\?.*)?$/;

  function hideAmdFromTfmaBundle() {
    var define = window.define;
    if (!define || !define.amd || define.__tfmaWidgetFixes) {
      return;
    }
    var amd = define.amd;
    Object.defineProperty(define, "amd", {
      configurable: true,
      enumerable: true,
      get: function () {
        var script = document.currentScript;
        return script && BUNDLE.test(script.src) ? undefined : amd;
      },
      set: function (value) {
        amd = value;
      },
    });
    define.__tfmaWidgetFixes = true;
  }

  function keepLiveWidgetViews() {
    // The notebook object is sealed: patch its prototype (render_cell_output has one caller, the
    // widget manager's re-render).
    var proto = Jupyter.notebook && Object.getPrototypeOf(Jupyter.notebook);
    if (!proto || !proto.render_cell_output || proto.__tfmaWidgetFixes) {
      return;
    }
    var renderCellOutput = proto.render_cell_output;
    proto.render_cell_output = function (cell) {
      var views = cell.output_area && cell.output_area._jupyterWidgetViews;
      if (views && views.length) {
        return;
      }
      return renderCellOutput.apply(this, arguments);
    };
    proto.__tfmaWidgetFixes = true;
  }

  function load_ipython_extension() {
    hideAmdFromTfmaBundle();
    keepLiveWidgetViews();
  }

  return { load_ipython_extension: load_ipython_extension };
});
