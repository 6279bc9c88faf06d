#!/usr/bin/env python3
"""Structure of grafana/dashboards/ebpf-geoip.json and the provisioning.

Checks what breaks a file-provisioned dashboard without an error message:
${DS_...} inputs, panels without the datasource variable, duplicate ids,
a geomap layer that cannot place its markers.
"""

import json
import os
import re
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DASHBOARD = os.path.join(REPO, "grafana", "dashboards", "ebpf-geoip.json")
DATASOURCES = os.path.join(REPO, "grafana", "provisioning", "datasources", "prometheus.yml")
PROVIDERS = os.path.join(REPO, "grafana", "provisioning", "dashboards", "ebpf-geoip.yml")
DS_REF = {"type": "prometheus", "uid": "${datasource}"}


def load_dashboard():
    with open(DASHBOARD) as f:
        return json.load(f)


def all_panels(dashboard):
    """Top-level panels and panels nested in collapsed rows."""
    for panel in dashboard["panels"]:
        yield panel
        for nested in panel.get("panels", []):
            yield nested


class DashboardTest(unittest.TestCase):
    def setUp(self):
        self.dashboard = load_dashboard()
        with open(DASHBOARD) as f:
            self.text = f.read()

    def test_has_fixed_uid_title_and_live_refresh(self):
        self.assertEqual(self.dashboard["uid"], "ebpf-geoip")
        self.assertTrue(self.dashboard["title"])
        self.assertEqual(self.dashboard["refresh"], "5s")
        self.assertEqual(self.dashboard["time"], {"from": "now-15m", "to": "now"})
        self.assertNotIn("__inputs", self.dashboard)
        self.assertNotIn("id", self.dashboard, "a provisioned dashboard must not carry a database id")

    def test_never_uses_import_inputs(self):
        self.assertNotIn("${DS_", self.text)
        self.assertNotIn("$DS_", self.text)

    def test_datasource_variable_is_a_prometheus_picker(self):
        variables = {v["name"]: v for v in self.dashboard["templating"]["list"]}
        self.assertEqual(variables["datasource"]["type"], "datasource")
        self.assertEqual(variables["datasource"]["query"], "prometheus")

    def test_query_variables_use_the_datasource_variable(self):
        variables = {v["name"]: v for v in self.dashboard["templating"]["list"]}
        for name in ("job", "instance", "port", "service"):
            self.assertIn(name, variables)
            variable = variables[name]
            self.assertEqual(variable["type"], "query")
            self.assertEqual(variable["datasource"], DS_REF, name)
            self.assertTrue(variable["includeAll"], name)
            self.assertRegex(variable["query"]["query"], r"^label_values\(.+, %s\)$" % name)
            self.assertEqual(variable["definition"], variable["query"]["query"])

    def test_service_variable_lists_the_services_of_the_chosen_ports(self):
        variables = [v["name"] for v in self.dashboard["templating"]["list"]]
        # After port, whose value its query uses.
        self.assertEqual(variables.index("service"), variables.index("port") + 1)
        service = self.dashboard["templating"]["list"][variables.index("service")]
        self.assertEqual(service["label"], "Service")
        self.assertEqual(
            service["query"]["query"],
            'label_values(ebpf_geoip_accepted_connections_total{job=~"$job", '
            'instance=~"$instance", port=~"$port"}, service)')
        self.assertTrue(service["multi"])
        self.assertTrue(service["includeAll"])
        # "All" as one regex, not a list of every name escaped: names are
        # free text (process names) and there may be 64 of them.
        self.assertEqual(service["allValue"], ".*")
        self.assertEqual(service["current"]["value"], ["$__all"])

    def test_panel_ids_are_unique_and_layout_fits_the_grid(self):
        ids = [p["id"] for p in all_panels(self.dashboard)]
        self.assertEqual(len(ids), len(set(ids)), ids)
        for panel in all_panels(self.dashboard):
            grid = panel["gridPos"]
            self.assertLessEqual(grid["x"] + grid["w"], 24, panel["title"])
            self.assertGreater(grid["h"], 0, panel["title"])

    def test_panels_do_not_overlap(self):
        cells = {}
        for panel in all_panels(self.dashboard):
            g = panel["gridPos"]
            for x in range(g["x"], g["x"] + g["w"]):
                for y in range(g["y"], g["y"] + g["h"]):
                    self.assertNotIn((x, y), cells,
                                     "%s overlaps %s" % (panel["title"], cells.get((x, y))))
                    cells[(x, y)] = panel["title"]

    def test_every_query_panel_uses_the_datasource_variable(self):
        query_panels = 0
        for panel in all_panels(self.dashboard):
            if panel["type"] == "row":
                self.assertFalse(panel.get("targets"), panel["title"])
                continue
            query_panels += 1
            self.assertEqual(panel["datasource"], DS_REF, panel["title"])
            self.assertTrue(panel["targets"], panel["title"])
            ref_ids = [t["refId"] for t in panel["targets"]]
            self.assertEqual(len(ref_ids), len(set(ref_ids)), panel["title"])
            for target in panel["targets"]:
                self.assertEqual(target["datasource"], DS_REF, panel["title"])
                self.assertTrue(target["expr"].strip(), panel["title"])
        self.assertGreaterEqual(query_panels, 15)

    def test_queries_filter_on_the_variables(self):
        for panel in all_panels(self.dashboard):
            for target in panel.get("targets", []):
                expr = target["expr"]
                for selector in re.findall(r"\b(?:ebpf_geoip_\w+|process_\w+|scrape_duration_seconds)\{([^}]*)\}", expr):
                    self.assertIn('job=~"$job"', selector, panel["title"])
                    self.assertIn('instance=~"$instance"', selector, panel["title"])
                if "ebpf_geoip_accepted_connections_total" in expr or "unique_source" in expr:
                    for selector in re.findall(
                            r"ebpf_geoip_(?:accepted_connections_total|unique_source_addresses)"
                            r"\{([^}]*)\}", expr):
                        self.assertIn('port=~"$port"', selector, panel["title"])
                        self.assertIn('service=~"$service"', selector, panel["title"])

    def test_geomap_looks_up_country_codes_in_the_countries_gazetteer(self):
        geomaps = [p for p in all_panels(self.dashboard) if p["type"] == "geomap"]
        self.assertEqual(len(geomaps), 1)
        geomap = geomaps[0]
        (target,) = geomap["targets"]
        self.assertTrue(target["instant"])
        self.assertFalse(target["range"])
        self.assertEqual(target["format"], "table")
        self.assertIn("sum by (country)", target["expr"])
        self.assertIn('country!~"private|unknown|overflow"', target["expr"])
        self.assertIn("[$__range]", target["expr"])
        (layer,) = geomap["options"]["layers"]
        self.assertEqual(layer["type"], "markers")
        self.assertEqual(layer["location"], {"mode": "lookup", "lookup": "country",
                                             "gazetteer": "public/gazetteer/countries.json"})
        style = layer["config"]["style"]
        self.assertEqual(style["size"]["field"], "Value")
        self.assertLess(style["size"]["min"], style["size"]["max"])
        self.assertEqual(style["color"]["field"], "Value")
        self.assertTrue(geomap["fieldConfig"]["defaults"]["color"]["mode"].startswith("continuous-"))

    def test_has_the_panels_the_product_promises(self):
        exprs = {p["title"]: " ".join(t["expr"] for t in p.get("targets", []))
                 for p in all_panels(self.dashboard)}
        by_type = {}
        for panel in all_panels(self.dashboard):
            by_type.setdefault(panel["type"], []).append(panel["title"])

        def panel_using(fragment):
            return [t for t, e in exprs.items() if fragment in e]

        self.assertTrue(panel_using('country=~"private|unknown|overflow"'), "off-map totals")
        self.assertTrue([t for t in panel_using("sum by (port) (rate(")
                         if t in by_type["timeseries"]], "connections/s by port")
        self.assertTrue(panel_using("sum by (country) (ebpf_geoip_unique_source_addresses"))
        self.assertTrue(panel_using("sum by (port) (ebpf_geoip_unique_source_addresses"))
        self.assertTrue([t for t in panel_using("topk(10, sum by (country) (increase(")
                         if t in by_type["bargauge"]], "top countries")
        self.assertTrue([t for t in panel_using(
            "sum by (service) (rate(ebpf_geoip_accepted_connections_total{")
            if t in by_type["timeseries"]], "connections/s by service")
        self.assertTrue([t for t in panel_using(
            "sort_desc(sum by (service) (increase(ebpf_geoip_accepted_connections_total{")
            if t in by_type["bargauge"]], "connections by service")
        for health in ("ebpf_geoip_probe_info", "ebpf_geoip_overflow_connections_total",
                       "ebpf_geoip_lookup_failures_total",
                       "time() - ebpf_geoip_database_build_timestamp_seconds",
                       "scrape_duration_seconds"):
            self.assertTrue(panel_using(health), health)


class ProvisioningTest(unittest.TestCase):
    def test_datasource_has_the_fixed_uid_and_points_at_the_compose_prometheus(self):
        with open(DATASOURCES) as f:
            text = f.read()
        self.assertRegex(text, r"(?m)^\s+uid: ebpf-geoip-prometheus$")
        self.assertRegex(text, r"(?m)^\s+type: prometheus$")
        self.assertRegex(text, r"(?m)^\s+url: http://prometheus:9090$")
        self.assertRegex(text, r"(?m)^\s+isDefault: true$")

    def test_provider_reads_the_directory_compose_mounts(self):
        with open(PROVIDERS) as f:
            text = f.read()
        self.assertRegex(text, r"(?m)^\s+type: file$")
        self.assertRegex(text, r"(?m)^\s+path: /etc/grafana/dashboards$")
        with open(os.path.join(REPO, "docker-compose.yml")) as f:
            compose = f.read()
        self.assertIn("./grafana/dashboards:/etc/grafana/dashboards:ro", compose)
        self.assertIn("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH: /etc/grafana/dashboards/ebpf-geoip.json",
                      compose)


if __name__ == "__main__":
    unittest.main()
