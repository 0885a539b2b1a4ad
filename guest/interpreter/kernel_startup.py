"""Runs inside every Python kernel at start: registers the e2b/data and e2b/chart formatters (§4.3)."""


def _onebox_register_formatters():
    # Everything lives inside this function so the user's namespace only gains one name,
    # which is deleted at the end of the file.
    import math
    import os
    import sys

    from IPython import get_ipython
    from IPython.core.formatters import BaseFormatter
    from traitlets import ObjectName, Unicode

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    try:
        import charts  # our chart extraction (e2b/chart); lives beside this file
    finally:
        sys.path.pop(0)

    def plain(value):
        """A JSON-clean value: ISO timestamps, numpy scalars as Python numbers, NaN as null."""
        if hasattr(value, "isoformat"):
            return value.isoformat()
        if hasattr(value, "item") and not isinstance(value, (list, dict, str)):
            try:
                value = value.item()
            except (ValueError, TypeError):
                return str(value)
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        return str(value)

    def dataframe_to_data(df):
        # §4.3: a pandas DataFrame becomes `to_dict(orient="list")` with ISO timestamps.
        return {str(k): [plain(v) for v in col] for k, col in df.to_dict(orient="list").items()}

    def figure_to_chart(fig):
        try:
            return charts.figure_to_chart(fig)
        except Exception:  # a figure we cannot describe still renders as PNG, with {} as E2B's
            return {}

    class DataFormatter(BaseFormatter):
        format_type = Unicode("e2b/data")
        print_method = ObjectName("_repr_e2b_data_")
        _return_type = (dict,)

    class ChartFormatter(BaseFormatter):
        format_type = Unicode("e2b/chart")
        print_method = ObjectName("_repr_e2b_chart_")
        _return_type = (dict,)

        def __call__(self, obj):
            # Not a type printer: activating the inline backend pops Figure from every
            # formatter (IPython's select_figure_formats), so Figures are recognised here.
            figure = sys.modules.get("matplotlib.figure")
            if figure is not None and isinstance(obj, figure.Figure):
                return figure_to_chart(obj)
            return super().__call__(obj)

    ip = get_ipython()
    formatters = ip.display_formatter.formatters
    data = DataFormatter(parent=ip.display_formatter)
    # by name, so pandas and matplotlib are imported only when the user imports them
    data.for_type_by_name("pandas.core.frame", "DataFrame", dataframe_to_data)
    formatters["e2b/data"] = data
    formatters["e2b/chart"] = ChartFormatter(parent=ip.display_formatter)


_onebox_register_formatters()
del _onebox_register_formatters
