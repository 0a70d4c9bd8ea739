"""loquat.reports (pandas) and loquat.plot (matplotlib, Agg backend) on real per-layer reports.

Skipped, naming the package, when pandas or matplotlib is not installed; the ImportError that
users get without them is tested either way.
"""

import os
import struct
import subprocess
import sys
import tempfile
import unittest
from unittest import mock

import loquat
import loquat.plot
import loquat.reports

from .support import MINILM, have_minilm, requires, start_daemon

LAYER0 = "encoder.layer.0.*"
SENTENCES = "The quick brown fox jumps over the lazy dog. " * 40

LEDGER = {"model": "m-nf4", "source": "m", "bitsPerWeight": 4.5, "byteCount": 10, "seconds": 0.1, "layers": [
    {"name": "model.layers.0.self_attn.q_proj.weight", "shape": [8, 8], "method": "nf4", "bits": 4, "groupSize": 64,
     "doubleQuant": False, "rotate": {"kind": "hadamard", "seed": 3}, "bitsPerWeight": 4.5, "relativeError": 0.1,
     "maxAbsError": 0.2, "sqnrDb": 20.0},
    {"name": "model.layers.0.self_attn.v_proj.weight", "shape": [8, 8], "method": "nf4", "bits": 4, "groupSize": 64,
     "doubleQuant": False, "bitsPerWeight": 4.5, "relativeError": 0.12, "maxAbsError": 0.25, "sqnrDb": None}]}

SWEEP = [{"quantizer": "NF4", "adapter": None, "bitsPerWeight": 4.5, "perplexity": 17.3, "perplexityStandardError": 2.0},
         {"quantizer": "NF4", "adapter": "loftq", "bitsPerWeight": 4.5, "perplexity": 17.2},
         {"quantizer": "NF2", "adapter": None, "bitsPerWeight": 2.5, "perplexity": {"value": 113.0, "standardError": 15.0}},
         {"quantizer": "NF2", "adapter": "loftq", "bitsPerWeight": 2.5, "perplexity": 90.4},
         {"quantizer": "NF2", "adapter": "cloq", "bitsPerWeight": 2.5, "perplexity": 40.7}]


def is_png(path):
    with open(path, "rb") as file:
        header = file.read(24)
    return header[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", header[16:24]) > (0, 0)


class MissingPackageTests(unittest.TestCase):
    """Without the optional packages: a clear ImportError naming the package and the extra."""

    def test_to_dataframe_without_pandas(self):
        with mock.patch.dict(sys.modules, {"pandas": None}):
            with self.assertRaises(ImportError) as caught:
                loquat.reports.to_dataframe(LEDGER)
        self.assertIn("pandas", str(caught.exception))
        self.assertIn("loquat[notebook]", str(caught.exception))
        self.assertEqual(caught.exception.name, "pandas")

    def test_plots_without_matplotlib(self):
        with mock.patch.dict(sys.modules, {"matplotlib": None, "matplotlib.pyplot": None}):
            for draw in (lambda: loquat.plot.layer_errors(LEDGER), lambda: loquat.plot.sweep(SWEEP)):
                with self.assertRaises(ImportError) as caught:
                    draw()
                self.assertIn("matplotlib", str(caught.exception))
                self.assertIn("loquat[notebook]", str(caught.exception))

    def test_importing_loquat_needs_neither(self):
        code = ("import sys; sys.modules.update(pandas=None, matplotlib=None); import loquat, loquat.plot, "
                "loquat.reports; print('ok')")
        environment = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(loquat.__file__)))
        output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment)
        self.assertEqual(output.stdout.strip(), "ok", output.stderr)


class KindTests(unittest.TestCase):
    def test_report_kinds(self):
        self.assertEqual(loquat.reports.report_kind(LEDGER), "quantize")
        self.assertEqual(loquat.reports.report_kind(LEDGER["layers"]), "quantize")
        self.assertEqual(loquat.reports.report_kind({"adapter": "a", "layers": [{"name": "x", "weightErrorBefore": 1}]}),
                         "initAdapter")
        self.assertEqual(loquat.reports.report_kind({"report": {"layers": []}, "seconds": 0}), "merge")
        self.assertEqual(loquat.reports.report_kind({"finetuned": "f", "layers": []}), "extractAdapter")
        self.assertEqual(loquat.reports.report_kind({"model": "m", "weightError": {}, "layers": []}), "evaluate")

    def test_a_result_without_layers_is_a_clear_error(self):
        with self.assertRaisesRegex(ValueError, "no per-layer report"):
            loquat.reports.report_layers({"model": "m", "perplexity": {"value": 3.0}})


@requires("pandas")
class DataFrameTests(unittest.TestCase):
    def test_ledger_columns_attrs_and_flattening(self):
        frame = loquat.reports.to_dataframe(LEDGER)
        self.assertEqual(len(frame), 2)
        self.assertEqual(list(frame.columns[:3]), ["name", "shape", "method"])
        self.assertIn("rotate.seed", frame.columns)
        self.assertEqual(frame.loc[0, "rotate.seed"], 3)
        self.assertEqual(frame.loc[0, "shape"], (8, 8))
        self.assertEqual(frame.attrs["kind"], "quantize")
        self.assertEqual(frame.attrs["bitsPerWeight"], 4.5)
        self.assertAlmostEqual(frame["relativeError"].mean(), 0.11)

    def test_sweep_to_dataframe(self):
        frame = loquat.reports.sweep_to_dataframe(SWEEP)
        self.assertEqual(list(frame.columns), ["quantizer", "adapter", "bitsPerWeight", "perplexity",
                                               "perplexityStandardError"])
        self.assertEqual(list(frame["adapter"]), ["none", "loftq", "none", "loftq", "cloq"])
        self.assertEqual(frame.loc[2, "perplexity"], 113.0)
        self.assertEqual(frame.loc[2, "perplexityStandardError"], 15.0)


@requires("matplotlib")
class PlotTests(unittest.TestCase):
    def setUp(self):
        import matplotlib
        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot
        self.addCleanup(matplotlib.pyplot.close, "all")
        self.scratch = tempfile.TemporaryDirectory(prefix="loquat-plot-")
        self.addCleanup(self.scratch.cleanup)

    def save(self, figure, name):
        import matplotlib.figure
        self.assertIsInstance(figure, matplotlib.figure.Figure)
        path = os.path.join(self.scratch.name, name)
        figure.savefig(path)
        self.assertTrue(is_png(path))
        return path

    def test_layer_errors_of_a_ledger(self):
        figure = loquat.plot.layer_errors(LEDGER)
        [axis] = figure.axes
        self.assertEqual(len(axis.patches), 2)
        self.assertEqual([label.get_text() for label in axis.get_xticklabels()],
                         ["0.self_attn.q_proj", "0.self_attn.v_proj"])
        self.assertIn("4.5 bits per weight", figure._suptitle.get_text())
        self.save(figure, "ledger.png")

    def test_layers_in_block_order_with_before_and_after(self):
        report = {"adapter": "a", "model": "q", "method": "loftq", "layers": [
            {"name": "model.layers.%d.mlp.down_proj.weight" % block, "weightErrorBefore": 0.2, "weightErrorAfter": 0.1}
            for block in (10, 2, 1)]}
        figure = loquat.plot.layer_errors(report)
        [axis] = figure.axes
        self.assertEqual([label.get_text() for label in axis.get_xticklabels()],
                         ["1.mlp.down_proj", "2.mlp.down_proj", "10.mlp.down_proj"])
        self.assertEqual(len(axis.patches), 6)  # before and after per layer
        self.assertEqual([text.get_text() for text in axis.get_legend().get_texts()],
                         ["before (quantized)", "after (with adapter)"])
        unsorted = loquat.plot.layer_errors(report, sort=False)
        self.assertEqual(unsorted.axes[0].get_xticklabels()[0].get_text(), "10.mlp.down_proj")
        self.save(figure, "adapter.png")

    def test_sweep_one_line_per_adapter_method(self):
        figure = loquat.plot.sweep(SWEEP, reference=14.4, title="t")
        [axis] = figure.axes
        legend = [text.get_text() for text in axis.get_legend().get_texts()]
        self.assertEqual(legend[1:], ["none", "loftq", "cloq"])
        self.assertIn("full precision", legend[0])
        self.assertEqual(axis.get_xlabel(), "bits per weight")
        self.assertEqual(axis.get_yscale(), "linear")
        self.assertEqual(loquat.plot.sweep(SWEEP, log=True).axes[0].get_yscale(), "log")
        self.save(figure, "sweep.png")

    @requires("pandas")
    def test_sweep_accepts_a_dataframe(self):
        frame = loquat.reports.sweep_to_dataframe(SWEEP)
        self.save(loquat.plot.sweep(frame), "sweep-frame.png")

    def test_sweep_row_without_perplexity_is_a_clear_error(self):
        with self.assertRaisesRegex(ValueError, "no perplexity"):
            loquat.plot.sweep([{"bitsPerWeight": 4}])


@have_minilm
@requires("pandas", "matplotlib")
class RealReportTests(unittest.TestCase):
    """Every per-layer report the daemon makes, as a DataFrame and as a figure."""

    @classmethod
    def setUpClass(cls):
        import matplotlib
        matplotlib.use("Agg", force=True)
        with start_daemon() as daemon:
            daemon.load(MINILM, name="bert")
            calibration = daemon.calibrate("bert", text=SENTENCES, context_length=64, sample_count=2, targets=LAYER0)
            cls.quantize = daemon.quantize("bert", "int", bits=3, targets=LAYER0, calibration=calibration, name="q")
            cls.init_adapter = daemon.init_adapter("q", "cloq", 4, calibration=calibration, name="a")
            cls.evaluate = daemon.evaluate("q", ["weightError", "outputError"], adapter="a", calibration=calibration)
            cls.merge = daemon.merge(["a"], model="q", into="quantized", strategy="auto", name="qm")
            full = daemon.merge(["a"], model="q", into="full", name="full")
            cls.extract = daemon.extract_adapter("bert", full, rank=2, targets=LAYER0, name="x")

    def setUp(self):
        import matplotlib.pyplot
        self.addCleanup(matplotlib.pyplot.close, "all")

    def check(self, result, kind, columns, panels):
        frame = loquat.reports.to_dataframe(result)
        self.assertEqual(frame.attrs["kind"], kind)
        self.assertEqual(len(frame), 6, kind)  # layer 0: query, key, value, attention output, intermediate, output
        self.assertTrue(set(columns) <= set(frame.columns), (kind, list(frame.columns)))
        self.assertTrue(frame["name"].str.startswith("encoder.layer.0.").all())
        figure = loquat.plot.layer_errors(result)
        self.assertEqual(len(figure.axes), panels, kind)
        with tempfile.TemporaryDirectory() as directory:
            path = os.path.join(directory, "figure.png")
            figure.savefig(path)
            self.assertTrue(is_png(path))
        return frame

    def test_quantize_ledger(self):
        frame = self.check(self.quantize, "quantize", ["relativeError", "sqnrDb", "outputRelativeError"], 2)
        self.assertEqual(frame.attrs["model"], "q")

    def test_init_adapter_before_after(self):
        frame = self.check(self.init_adapter, "initAdapter", ["weightErrorBefore", "weightErrorAfter",
                                                              "outputErrorBefore", "outputErrorAfter"], 2)
        self.assertTrue((frame["outputErrorAfter"] < frame["outputErrorBefore"]).all())
        self.assertIn("summary.meanWeightErrorAfter", frame.attrs)

    def test_evaluate_layer_errors(self):
        self.check(self.evaluate, "evaluate", ["weightError", "outputError"], 2)

    def test_merge_report(self):
        frame = self.check(self.merge, "merge", ["strategy", "adapterLoss"], 1)
        self.assertEqual(frame.attrs["model"], "qm")

    def test_extract_adapter(self):
        frame = self.check(self.extract, "extractAdapter", ["rank", "energyRetained", "relativeError"], 1)
        self.assertTrue((frame["rank"] == 2).all())


if __name__ == "__main__":
    unittest.main()
