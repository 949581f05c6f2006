"""The schedule document engine: many rules, each in its own time zone, over scale sets and Batch pools.

`document` parses and validates the document (pure), `planner` decides per target what is due (pure),
`state` keeps one small ETag-guarded blob per target, `reconcile` resolves targets and acts, and
`followup` reports how operations a run left running ended (and runs the vmss_schedule timer's firing);
`timeline` lays a window of firings and recorded outcomes out on a time axis (pure) and `timeline_html`
draws it as one self-contained page.
"""
