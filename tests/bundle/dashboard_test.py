#!/usr/bin/env python3
"""Structure of grafana/dashboards/ebpf-geoip.json and the provisioning.

Checks what breaks a file-provisioned dashboard without an error message:
${DS_...} inputs, panels without the datasource variable, duplicate ids,
a geomap layer that cannot place its markers. Then, with promtool, that
every query parses and that every panel answers, against the shipped
recording rules, both on a fleet (series labelled cluster and node) and on a
single host (neither label); the fleet panels, and the panels of bytes,
lifetimes and failed connections, with their exact figures.
"""

import json
import math
import os
import re
import shutil
import subprocess
import tempfile
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DASHBOARD = os.path.join(REPO, "grafana", "dashboards", "ebpf-geoip.json")
DATASOURCES = os.path.join(REPO, "grafana", "provisioning", "datasources", "prometheus.yml")
PROVIDERS = os.path.join(REPO, "grafana", "provisioning", "dashboards", "ebpf-geoip.yml")
RECORDING_RULES = os.path.join(REPO, "prometheus", "rules", "ebpf_geoip_recording.yml")
DS_REF = {"type": "prometheus", "uid": "${datasource}"}
# Where Grafana serves grafana/gazetteer/countries.json (compose and the
# Kubernetes ConfigMap mount it there; grafana/README.md says why).
GAZETTEER = "public/gazetteer/ebpf-geoip-countries.json"
ROWS = ["Fleet overview", "Per-node drill-down", "Selected nodes, ports and services",
        "Traffic, lifetimes and failed connections", "Networks", "Exporter health"]
# The recording rules of the ebpf_geoip.fleet group the fleet rows read.
CLUSTER_COUNTRY = "cluster_country:ebpf_geoip_accepted_connections:rate1m"
CLUSTER_PORT_SERVICE = "cluster_port_service:ebpf_geoip_accepted_connections:rate1m"
NODE_COUNTRY = "node_country:ebpf_geoip_accepted_connections:rate1m"
UNIQUE_SUM = "cluster_country:ebpf_geoip_unique_source_addresses:sum"
UNIQUE_MAX = "cluster_country:ebpf_geoip_unique_source_addresses:max"
# What Grafana puts in place of its built-in variables.
BUILTINS = {"$__range": "5m", "$__rate_interval": "1m", "$__interval": "15s"}


def load_dashboard():
    with open(DASHBOARD) as f:
        return json.load(f)


def all_panels(dashboard):
    """Top-level panels and panels nested in collapsed rows."""
    for panel in dashboard["panels"]:
        yield panel
        for nested in panel.get("panels", []):
            yield nested


def panels_by_row(dashboard):
    """{row title: [panels below it, up to the next row]}, in grid order."""
    rows = {}
    current = None
    for panel in sorted(dashboard["panels"], key=lambda p: (p["gridPos"]["y"], p["gridPos"]["x"])):
        if panel["type"] == "row":
            current = panel["title"]
            rows.setdefault(current, [])
        else:
            rows.setdefault(current, []).append(panel)
    return rows


def exprs_of(panel):
    return " ".join(t["expr"] for t in panel.get("targets", []))


def substitute(text, values):
    """Replaces $name by its value, longest names first ($__range before $__r...)."""
    for name in sorted(values, key=len, reverse=True):
        text = text.replace(name, values[name])
    return text


def all_values(dashboard):
    """The query variables as Grafana sends them with "All" selected: the
    allValue, or for job and instance (no allValue) a regex that matches
    every value."""
    values = dict(BUILTINS)
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            values["$" + variable["name"]] = variable.get("allValue") or ".+"
    return values


def promtool(*args):
    return subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=120)


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
        for name in ("cluster", "node", "job", "instance", "port", "service"):
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
            'label_values(ebpf_geoip_accepted_connections_total{cluster=~"$cluster", '
            'node=~"$node", job=~"$job", instance=~"$instance", port=~"$port"}, service)')
        self.assertTrue(service["multi"])
        self.assertTrue(service["includeAll"])
        # "All" as one regex, not a list of every name escaped: names are
        # free text (process names) and there may be 64 of them.
        self.assertEqual(service["allValue"], ".*")
        self.assertEqual(service["current"]["value"], ["$__all"])

    def test_cluster_and_node_variables_come_first_and_match_a_single_host(self):
        variables = [v["name"] for v in self.dashboard["templating"]["list"]]
        self.assertEqual(variables,
                         ["datasource", "cluster", "node", "job", "instance", "port", "service"])
        by_name = {v["name"]: v for v in self.dashboard["templating"]["list"]}
        # ebpf_geoip_build_info: one series per exporter, whatever it counts.
        self.assertEqual(by_name["cluster"]["query"]["query"],
                         "label_values(ebpf_geoip_build_info, cluster)")
        self.assertEqual(by_name["node"]["query"]["query"],
                         'label_values(ebpf_geoip_build_info{cluster=~"$cluster"}, node)')
        for name in ("cluster", "node"):
            variable = by_name[name]
            self.assertEqual(variable["label"], name.capitalize())
            self.assertTrue(variable["multi"], name)
            self.assertTrue(variable["includeAll"], name)
            # On a single host neither label exists: "All" must match series
            # without it, which a regex of the (no) values would not.
            self.assertEqual(variable["allValue"], ".*", name)
            self.assertEqual(variable["current"]["value"], ["$__all"], name)
            self.assertTrue(variable["description"], name)
        # The variables after them list only what the chosen nodes have.
        for name in ("job", "instance", "port", "service"):
            self.assertIn('{cluster=~"$cluster", node=~"$node"', by_name[name]["query"]["query"],
                          name)

    def test_rows_in_order_and_expanded(self):
        rows = [p for p in self.dashboard["panels"] if p["type"] == "row"]
        self.assertEqual([r["title"] for r in rows], ROWS)
        for row in rows:
            # Expanded, so that every panel is a top-level panel (the stack
            # test runs each of them) and the rows read top to bottom.
            self.assertFalse(row["collapsed"], row["title"])
            self.assertEqual(row["panels"], [], row["title"])
            self.assertEqual((row["gridPos"]["x"], row["gridPos"]["w"]), (0, 24), row["title"])
        self.assertEqual(self.dashboard["panels"][0]["title"], "Fleet overview")
        by_row = panels_by_row(self.dashboard)
        self.assertNotIn(None, by_row, "panels above the first row")
        for title in ROWS:
            self.assertTrue(by_row[title], title)

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
        fleet = {p["title"] for p in panels_by_row(self.dashboard)["Fleet overview"]}
        for panel in all_panels(self.dashboard):
            for target in panel.get("targets", []):
                expr = target["expr"]
                for selector in re.findall(r"(?<![\w:])(?:ebpf_geoip_\w+|process_\w+|scrape_duration_seconds)\{([^}]*)\}", expr):
                    self.assertIn('cluster=~"$cluster"', selector, panel["title"])
                    if panel["title"] in fleet:
                        # The fleet overview is every node of the clusters.
                        self.assertNotIn("node=~", selector, panel["title"])
                        continue
                    self.assertIn('node=~"$node"', selector, panel["title"])
                    self.assertIn('job=~"$job"', selector, panel["title"])
                    self.assertIn('instance=~"$instance"', selector, panel["title"])
                # Recording rules have no job or instance; cluster always,
                # node, port and service where the rule keeps them.
                for name, selector in re.findall(r"\b(\w+:ebpf_geoip_\w+:\w+)\{([^}]*)\}", expr):
                    self.assertIn('cluster=~"$cluster"', selector, panel["title"])
                    if name == CLUSTER_PORT_SERVICE:
                        self.assertIn('port=~"$port"', selector, panel["title"])
                        self.assertIn('service=~"$service"', selector, panel["title"])
                if "ebpf_geoip_accepted_connections_total" in expr or "unique_source" in expr:
                    for selector in re.findall(
                            r"ebpf_geoip_(?:accepted_connections_total|unique_source_addresses)"
                            r"\{([^}]*)\}", expr):
                        self.assertIn('port=~"$port"', selector, panel["title"])
                        self.assertIn('service=~"$service"', selector, panel["title"])
                # Traffic and lifetimes are per port and service, like connections.
                for selector in re.findall(
                        r"ebpf_geoip_(?:received_bytes_total|sent_bytes_total|closed_connections_total"
                        r"|connection_lifetime_seconds_total|connection_duration_seconds_\w+)"
                        r"\{([^}]*)\}", expr):
                    self.assertIn('port=~"$port"', selector, panel["title"])
                    self.assertIn('service=~"$service"', selector, panel["title"])
                # Failures have a port (a watched one, or "other") but no
                # service: a filter on it would match nothing once a service
                # is chosen.
                for selector in re.findall(r"ebpf_geoip_failed_connections_total\{([^}]*)\}", expr):
                    self.assertIn('port=~"$port"', selector, panel["title"])
                    self.assertNotIn("service", selector, panel["title"])

    def test_geomaps_look_up_country_codes_in_the_countries_gazetteer(self):
        geomaps = {p["title"]: p for p in all_panels(self.dashboard) if p["type"] == "geomap"}
        self.assertEqual(set(geomaps), {"Connections by country", "Connections by country, fleet",
                                        "Connections by country, selected nodes",
                                        "Bytes by country"})
        # Each map's data: the exporters' own series on one, the fleet and
        # the per-node recording rules on the others.
        self.assertIn("increase(ebpf_geoip_accepted_connections_total{",
                      exprs_of(geomaps["Connections by country"]))
        self.assertIn("avg_over_time(%s{" % CLUSTER_COUNTRY,
                      exprs_of(geomaps["Connections by country, fleet"]))
        self.assertIn("avg_over_time(%s{" % NODE_COUNTRY,
                      exprs_of(geomaps["Connections by country, selected nodes"]))
        self.assertIn('node=~"$node"', exprs_of(geomaps["Connections by country, selected nodes"]))
        # Bytes both ways, added.
        self.assertIn("increase(ebpf_geoip_received_bytes_total{", exprs_of(geomaps["Bytes by country"]))
        self.assertIn("increase(ebpf_geoip_sent_bytes_total{", exprs_of(geomaps["Bytes by country"]))
        for title, geomap in geomaps.items():
            (target,) = geomap["targets"]
            self.assertTrue(target["instant"], title)
            self.assertFalse(target["range"], title)
            self.assertEqual(target["format"], "table", title)
            self.assertIn("sum by (country)", target["expr"], title)
            self.assertIn('country!~"private|unknown|overflow"', target["expr"], title)
            self.assertIn("[$__range]", target["expr"], title)
            (layer,) = geomap["options"]["layers"]
            self.assertEqual(layer["type"], "markers", title)
            # The gazetteer shipped in grafana/gazetteer/ (Grafana's own
            # lacks SS and puts UM at 0, 0), as compose and Kubernetes mount it.
            self.assertEqual(layer["location"], {"mode": "lookup", "lookup": "country",
                                                 "gazetteer": GAZETTEER},
                             title)
            self.assertNotIn("Grafana's countries gazetteer", geomap["description"], title)
            self.assertIn(GAZETTEER, geomap["description"], title)
            style = layer["config"]["style"]
            self.assertEqual(style["size"]["field"], "Value", title)
            self.assertLess(style["size"]["min"], style["size"]["max"], title)
            self.assertEqual(style["color"]["field"], "Value", title)
            self.assertTrue(geomap["fieldConfig"]["defaults"]["color"]["mode"].startswith("continuous-"),
                            title)
            # The same view and markers as the single-host map.
            self.assertEqual(geomap["options"]["view"],
                             geomaps["Connections by country"]["options"]["view"], title)
            self.assertEqual(style, geomaps["Connections by country"]["options"]["layers"][0]
                             ["config"]["style"], title)

    def test_fleet_overview_reads_the_fleet_recording_rules(self):
        fleet = {p["title"]: p for p in panels_by_row(self.dashboard)["Fleet overview"]}
        self.assertEqual(set(fleet), {
            "Nodes reporting", "Connections/s, fleet",
            "Unique source addresses, fleet: at least, at most",
            "Connections by country, fleet", "Top countries, fleet",
            "Connections/s by port and service, fleet"})
        for title, panel in fleet.items():
            # A few series per cluster and country, however many nodes: no
            # panel of the row reads the exporters' connection series.
            self.assertNotIn("ebpf_geoip_accepted_connections_total", exprs_of(panel), title)
            self.assertNotIn("ebpf_geoip_unique_source_addresses{", exprs_of(panel), title)
        self.assertEqual(exprs_of(fleet["Nodes reporting"]),
                         'count(ebpf_geoip_build_info{cluster=~"$cluster"})')
        self.assertEqual(exprs_of(fleet["Connections/s, fleet"]),
                         'sum(%s{cluster=~"$cluster"})' % CLUSTER_COUNTRY)
        top = fleet["Top countries, fleet"]
        self.assertEqual(top["type"], "bargauge")
        self.assertIn("topk(10, sum by (country) (avg_over_time(%s{" % CLUSTER_COUNTRY, exprs_of(top))
        by_port = fleet["Connections/s by port and service, fleet"]
        self.assertEqual(by_port["type"], "timeseries")
        self.assertIn("sum by (port, service) (%s{" % CLUSTER_PORT_SERVICE, exprs_of(by_port))
        for title in ("Connections/s, fleet", "Connections by country, fleet",
                      "Top countries, fleet", "Connections/s by port and service, fleet"):
            self.assertEqual(fleet[title]["fieldConfig"]["defaults"]["unit"], "cps", title)

    def test_unique_addresses_are_shown_as_what_they_are(self):
        """A client seen on two nodes, ports or services is in two series:
        summing them gives an upper bound, and a panel that sums says so."""
        for title, maximum, total in (
                ("Unique source addresses, fleet: at least, at most", UNIQUE_MAX, UNIQUE_SUM),
                ("Unique source addresses: at least, at most",
                 "ebpf_geoip_unique_source_addresses", "ebpf_geoip_unique_source_addresses")):
            (panel,) = [p for p in all_panels(self.dashboard) if p["title"] == title]
            self.assertEqual(panel["type"], "stat")
            self.assertEqual(panel["options"]["textMode"], "value_and_name")
            at_least, at_most = panel["targets"]
            self.assertEqual((at_least["legendFormat"], at_most["legendFormat"]),
                             ("at least", "at most"), title)
            # Countries are disjoint, so the largest series of each country
            # adds up to a lower bound; across clusters, too (max by country).
            self.assertTrue(at_least["expr"].startswith("sum(max by (country) (%s{" % maximum),
                            at_least["expr"])
            self.assertTrue(at_most["expr"].startswith("sum(%s{" % total), at_most["expr"])
            description = panel["description"]
            for words in ("at least", "at most", "twice", "between"):
                self.assertIn(words, description.lower(), title)
        fleet = [p for p in all_panels(self.dashboard)
                 if p["title"] == "Unique source addresses, fleet: at least, at most"][0]
        for words in ("lower bound", "upper bound", "two nodes or two ports counts twice"):
            self.assertIn(words, fleet["description"], words)
        # Every other panel that sums the gauge is titled an upper bound.
        upper_bounds = 0
        for panel in all_panels(self.dashboard):
            sums = re.search(r"sum(?: by \(\w+\))? \((?:%s|ebpf_geoip_unique_source_addresses)\{"
                             % re.escape(UNIQUE_SUM), exprs_of(panel))
            if sums and "at least" not in panel["title"]:
                self.assertIn("(upper bound)", panel["title"])
                self.assertIn("counts twice", panel["description"], panel["title"])
                upper_bounds += 1
        self.assertEqual(upper_bounds, 2)

    def test_drill_down_lists_nodes_and_links_each_to_itself(self):
        rows = panels_by_row(self.dashboard)
        drill = {p["title"]: p for p in rows["Per-node drill-down"]}
        self.assertEqual(set(drill), {"Nodes by connections/s",
                                      "Connections by country, selected nodes"})
        table = drill["Nodes by connections/s"]
        self.assertEqual(table["type"], "table")
        (target,) = table["targets"]
        self.assertEqual(target["format"], "table")
        self.assertTrue(target["instant"])
        # Every node of the clusters, not only the selected ones: the table
        # is where another node is picked.
        self.assertEqual(target["expr"], 'sort_desc(sum by (cluster, node) (avg_over_time('
                         '%s{cluster=~"$cluster"}[$__range])))' % NODE_COUNTRY)
        (override,) = [o for o in table["fieldConfig"]["overrides"]
                       if o["matcher"] == {"id": "byName", "options": "node"}]
        (links,) = [p["value"] for p in override["properties"] if p["id"] == "links"]
        (link,) = links
        url = link["url"]
        # This dashboard, the same time range, data source and clusters, and
        # the clicked node as the Node variable.
        self.assertTrue(url.startswith("/d/%s/" % self.dashboard["uid"]), url)
        for part in ("${__url_time_range}", "${datasource:queryparam}", "${cluster:queryparam}",
                     "var-node=${__value.raw}"):
            self.assertIn(part, url)
        self.assertFalse(link.get("targetBlank"))
        # The organize transformation renames Value; the sort must use the new name.
        (organize,) = [t for t in table["transformations"] if t["id"] == "organize"]
        renamed = organize["options"]["renameByName"]["Value"]
        self.assertEqual(table["options"]["sortBy"], [{"displayName": renamed, "desc": True}])
        self.assertEqual(drill["Connections by country, selected nodes"]["type"], "geomap")
        # Below the drill-down: the exporters' own series of the selected
        # nodes, every one filtered by the Node variable.
        for panel in (rows["Selected nodes, ports and services"]
                      + rows["Traffic, lifetimes and failed connections"] + rows["Exporter health"]):
            self.assertIn('node=~"$node"', exprs_of(panel), panel["title"])

    def test_every_recording_rule_a_panel_reads_is_shipped(self):
        with open(RECORDING_RULES) as f:
            recorded = set(re.findall(r"(?m)^\s+- record: (\S+)$", f.read()))
        used = set()
        for panel in all_panels(self.dashboard):
            used |= set(re.findall(r"\b\w+:ebpf_geoip_\w+:\w+\b", exprs_of(panel)))
        self.assertEqual(used, {CLUSTER_COUNTRY, CLUSTER_PORT_SERVICE, NODE_COUNTRY,
                                UNIQUE_SUM, UNIQUE_MAX})
        self.assertLessEqual(used, recorded)

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
        self.assertTrue([t for t in panel_using("ebpf_geoip_sent_bytes_total{")
                         if t in by_type["geomap"]], "bytes by country")
        self.assertTrue([t for t in panel_using(
            "topk(10, sum by (country) (increase(ebpf_geoip_received_bytes_total{")
            if t in by_type["bargauge"]], "top countries by bytes")
        self.assertTrue([t for t in panel_using(
            "sum by (country, reason) (increase(ebpf_geoip_failed_connections_total{")
            if t in by_type["bargauge"]], "failed connections by country and reason")
        self.assertTrue([t for t in panel_using("ebpf_geoip_connection_duration_seconds_bucket{")
                         if t in by_type["heatmap"]], "lifetimes")
        self.assertTrue([t for t in panel_using("histogram_quantile(0.5, sum by (port, service, le)")
                         if t in by_type["timeseries"]], "lifetime quantiles")
        for health in ("ebpf_geoip_probe_info", "ebpf_geoip_overflow_connections_total",
                       "ebpf_geoip_lookup_failures_total",
                       "time() - ebpf_geoip_database_build_timestamp_seconds",
                       "scrape_duration_seconds"):
            self.assertTrue(panel_using(health), health)

    def test_traffic_row_shows_bytes_lifetimes_and_failed_connections(self):
        row = {p["title"]: p for p in
               panels_by_row(self.dashboard)["Traffic, lifetimes and failed connections"]}
        self.assertEqual(set(row), set(TRAFFIC_ROW))
        for title, (kind, unit) in TRAFFIC_ROW.items():
            self.assertEqual(row[title]["type"], kind, title)
            if unit:
                self.assertEqual(row[title]["fieldConfig"]["defaults"]["unit"], unit, title)
            self.assertTrue(row[title]["description"], title)
        # Received above the axis, sent below it.
        for title in ("Bytes/s by country, received and sent",
                      "Bytes/s by port and service, received and sent"):
            received, sent = row[title]["targets"]
            self.assertIn("ebpf_geoip_received_bytes_total{", received["expr"], title)
            self.assertIn("ebpf_geoip_sent_bytes_total{", sent["expr"], title)
            self.assertEqual(row[title]["fieldConfig"]["overrides"], [
                {"matcher": {"id": "byFrameRefID", "options": sent["refId"]},
                 "properties": [{"id": "custom.transform", "value": "negative-Y"}]}], title)
        # The histogram's buckets as Grafana's heatmap reads them: one
        # series per le, not recomputed by Grafana.
        heatmap = row["Connection lifetimes"]
        (target,) = heatmap["targets"]
        self.assertEqual(target["format"], "heatmap")
        self.assertEqual(target["legendFormat"], "{{le}}")
        self.assertTrue(target["expr"].startswith(
            "sum by (le) (increase(ebpf_geoip_connection_duration_seconds_bucket{"))
        self.assertFalse(heatmap["options"]["calculate"])
        self.assertEqual(heatmap["options"]["yAxis"]["unit"], "s")
        # Quantiles only where connections closed: histogram_quantile over
        # empty buckets is NaN.
        for target, q in zip(row["Connection lifetime quantiles by port and service"]["targets"],
                             ("0.5", "0.9")):
            self.assertTrue(target["expr"].startswith(
                "histogram_quantile(%s, sum by (port, service, le) (rate(" % q), target["expr"])
            self.assertIn(" and on (port, service) (sum by (port, service) (rate("
                          "ebpf_geoip_connection_duration_seconds_count{", target["expr"])
        # The mean per country divides only where connections closed.
        self.assertIn("/ (sum by (country) (increase(ebpf_geoip_closed_connections_total{",
                      exprs_of(row["Mean connection lifetime by country"]))
        self.assertIn(") > 0)", exprs_of(row["Mean connection lifetime by country"]))
        for title in ("Failed connections by country and reason",
                      "Failed connections/s by port and reason"):
            self.assertIn("reason", row[title]["targets"][0]["legendFormat"], title)
            self.assertIn('"other"', row[title]["description"], title)
            self.assertIn("no service", row[title]["description"], title)


# The panels of the row "Traffic, lifetimes and failed connections": type, unit.
TRAFFIC_ROW = {
    "Bytes by country": ("geomap", "bytes"),
    "Top countries by bytes": ("bargauge", "bytes"),
    "Bytes/s by country, received and sent": ("timeseries", "Bps"),
    "Bytes/s by port and service, received and sent": ("timeseries", "Bps"),
    "Connection lifetimes": ("heatmap", None),
    "Connection lifetime quantiles by port and service": ("timeseries", "s"),
    "Mean connection lifetime by country": ("bargauge", "s"),
    "Failed connections by country and reason": ("bargauge", "short"),
    "Failed connections/s by port and reason": ("timeseries", "cps"),
}


# A fleet: three nodes in two clusters, labelled by the scrape.
FLEET_NODES = [{"cluster": "eu", "node": "node-1", "instance": "10.0.0.1:19100"},
               {"cluster": "eu", "node": "node-2", "instance": "10.0.0.2:19100"},
               {"cluster": "us", "node": "node-3", "instance": "10.1.0.3:19100"}]
# (node, country, port, service, connections per minute, distinct addresses).
# A US client of node-1 on 443 also reached 22, and one reached node-2 too:
# the true number of distinct US clients in eu is 4, between max 3 and sum 6.
FLEET_TRAFFIC = [("node-1", "US", "443", "web", 60, 3),
                 ("node-1", "DE", "443", "web", 30, 1),
                 ("node-1", "US", "22", "sshd", 30, 1),
                 ("node-2", "US", "443", "web", 120, 2),
                 ("node-3", "US", "443", "web", 60, 4),
                 ("node-3", "BR", "80", "nginx", 600, 7),
                 ("node-3", "private", "22", "sshd", 60, 1)]
# A single host: neither cluster nor node.
HOST = [{"instance": "localhost:19100"}]
HOST_TRAFFIC = [(None, "US", "8081", "python3", 60, 2),
                (None, "private", "22", "sshd", 30, 1)]
# Every connection of a port: bytes received and sent, and how long it
# lasted, which puts it in one bucket of the histogram: (1, 10] for 443 and
# 80, (10, 60] for 22, (60, 600] for 8081. Every connection closes.
PER_CONNECTION = {"443": (200, 3000, 5), "22": (50, 100, 30), "80": (100, 1000, 2),
                  "8081": (300, 600, 300)}
BUCKETS = (0.01, 0.1, 1, 10, 60, 600, 3600, math.inf)
# (node, country, port, reason, failed connections per minute); "other" is
# every port not watched.
FLEET_FAILURES = [("node-1", "CN", "other", "refused", 120),
                  ("node-2", "CN", "other", "refused", 60),
                  ("node-2", "CN", "443", "incomplete", 15),
                  ("node-3", "RU", "80", "refused", 30),
                  ("node-3", "private", "other", "refused", 15)]
HOST_FAILURES = [(None, "NL", "other", "refused", 15),
                 (None, "US", "8081", "incomplete", 30)]
EVAL_TIME = "10m"


def input_series(dashboard, hosts, traffic, failures):
    """promtool input_series: the connection, traffic and lifetime series of
    `traffic` (see PER_CONNECTION), the failed connections of `failures` and
    one series of every other metric the dashboard reads on each host,
    sampled every minute for ten minutes."""
    series = []

    def add(name, labels, values):
        text = ", ".join('%s="%s"' % item for item in sorted(labels.items()))
        series.append({"series": "%s{%s}" % (name, text), "values": values})

    closed = {}  # (node, port, service) -> connections per minute
    for node, country, port, service, per_minute, addresses in traffic:
        (host,) = [h for h in hosts if h.get("node") == node]
        labels = dict(host, job="ebpf_geoip", country=country, port=port, service=service)
        add("ebpf_geoip_accepted_connections_total", labels, "0+%dx10" % per_minute)
        add("ebpf_geoip_unique_source_addresses", labels, "%dx10" % addresses)
        received, sent, lifetime = PER_CONNECTION[port]
        add("ebpf_geoip_received_bytes_total", labels, "0+%dx10" % (per_minute * received))
        add("ebpf_geoip_sent_bytes_total", labels, "0+%dx10" % (per_minute * sent))
        add("ebpf_geoip_closed_connections_total", labels, "0+%dx10" % per_minute)
        add("ebpf_geoip_connection_lifetime_seconds_total", labels,
            "0+%dx10" % (per_minute * lifetime))
        closed[(node, port, service)] = closed.get((node, port, service), 0) + per_minute
    for (node, port, service), per_minute in closed.items():
        (host,) = [h for h in hosts if h.get("node") == node]
        labels = dict(host, job="ebpf_geoip", port=port, service=service)
        lifetime = PER_CONNECTION[port][2]
        for bound in BUCKETS:
            le = "+Inf" if bound == math.inf else "%g" % bound
            add("ebpf_geoip_connection_duration_seconds_bucket", dict(labels, le=le),
                "0+%dx10" % (per_minute if lifetime <= bound else 0))
        add("ebpf_geoip_connection_duration_seconds_sum", labels,
            "0+%dx10" % (per_minute * lifetime))
        add("ebpf_geoip_connection_duration_seconds_count", labels, "0+%dx10" % per_minute)
    for node, country, port, reason, per_minute in failures:
        (host,) = [h for h in hosts if h.get("node") == node]
        add("ebpf_geoip_failed_connections_total",
            dict(host, job="ebpf_geoip", country=country, port=port, reason=reason),
            "0+%dx10" % per_minute)
    text = json.dumps(dashboard)
    others = set(re.findall(r"(?<![\w:])(ebpf_geoip_\w+|process_\w+|scrape_duration_seconds)\b",
                            text))
    others -= {name for name in re.findall(r"^(\w+)\{", "\n".join(s["series"] for s in series),
                                           re.M)}
    extra = {"ebpf_geoip_probe_info": {"mode": "tracepoint"},
             "ebpf_geoip_build_info": {"version": "0.2.0", "revision": "abc", "branch": "main"}}
    for name in sorted(others):
        for host in hosts:
            add(name, dict(host, job="ebpf_geoip", **extra.get(name, {})),
                "0+1x10" if name.endswith("_total") else "1x10")
    return series


def panel_queries(dashboard):
    """(panel title, refId, expr) of every query panel."""
    for panel in all_panels(dashboard):
        for target in panel.get("targets", []):
            yield panel["title"], target["refId"], target["expr"]


class PromtoolTest(unittest.TestCase):
    """The queries against Prometheus' own parser and engine: promtool, with
    the shipped recording rules."""

    @classmethod
    def setUpClass(cls):
        if shutil.which("promtool") is None:
            raise AssertionError("promtool not found (Debian package prometheus)")
        cls.dashboard = load_dashboard()
        cls.tmp = tempfile.mkdtemp(prefix="ebpf-geoip-dashboard-test.")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def write(self, name, content):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            json.dump(content, f, indent=1)  # JSON is YAML
        return path

    def run_unit_tests(self, name, tests):
        path = self.write(name, {"rule_files": [RECORDING_RULES], "evaluation_interval": "1m",
                                 "tests": tests})
        result = promtool("test", "rules", path)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

    def test_every_query_parses(self):
        values = all_values(self.dashboard)
        rules = [{"record": "dashboard_panel_%d" % i, "expr": substitute(expr, values)}
                 for i, (_, _, expr) in enumerate(panel_queries(self.dashboard))]
        for variable in self.dashboard["templating"]["list"]:
            if variable["type"] == "query":
                match = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["query"]["query"])
                rules.append({"record": "dashboard_variable_" + variable["name"],
                              "expr": substitute(match.group(1), values)})
        self.assertGreaterEqual(len(rules), 30)
        path = self.write("queries.yml", {"groups": [{"name": "dashboard", "rules": rules}]})
        result = promtool("check", "rules", path)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn("SUCCESS: %d rules found" % len(rules), result.stdout + result.stderr)

    def test_every_panel_answers_on_a_fleet_and_on_a_single_host(self):
        selections = (
            ("a fleet, everything selected", FLEET_NODES, FLEET_TRAFFIC, FLEET_FAILURES, {}),
            ("a fleet, one node selected", FLEET_NODES, FLEET_TRAFFIC, FLEET_FAILURES,
             {"$cluster": "us", "$node": "node-3"}),
            ("a single host", HOST, HOST_TRAFFIC, HOST_FAILURES, {}))
        tests = []
        for _, hosts, traffic, failures, chosen in selections:
            values = dict(all_values(self.dashboard), **chosen)
            checks = [{"expr": "count((%s)) > bool 0" % substitute(expr, values),
                       "eval_time": EVAL_TIME, "exp_samples": [{"labels": "{}", "value": 1}]}
                      for _, _, expr in panel_queries(self.dashboard)]
            tests.append({"interval": "1m",
                          "input_series": input_series(self.dashboard, hosts, traffic, failures),
                          "promql_expr_test": checks})
        self.run_unit_tests("every_panel_test.yml", tests)

    def test_fleet_panels_show_exact_figures(self):
        queries = {(title, ref): expr for title, ref, expr in panel_queries(self.dashboard)}
        all_selected = all_values(self.dashboard)
        countries = "Connections by country, fleet"
        unique = "Unique source addresses, fleet: at least, at most"
        # Expected samples: {(panel, refId): {labels: value}}, per selection.
        fleet = {
            ("Nodes reporting", "A"): {"{}": 3},
            ("Connections/s, fleet", "A"): {"{}": 16},
            # US: the largest series is node-3's 4 (us), not 3 + 4: the
            # same client may have reached both clusters.
            (unique, "A"): {"{}": 4 + 1 + 7 + 1},
            (unique, "B"): {"{}": 3 + 1 + 1 + 2 + 4 + 7 + 1},
            (countries, "A"): {'{country="US"}': 4.5, '{country="DE"}': 0.5,
                               '{country="BR"}': 10},
            ("Top countries, fleet", "A"): {'{country="US"}': 4.5, '{country="DE"}': 0.5,
                                            '{country="BR"}': 10},
            ("Connections/s by port and service, fleet", "A"): {
                '{port="443", service="web"}': 4.5, '{port="22", service="sshd"}': 1.5,
                '{port="80", service="nginx"}': 10},
            ("Nodes by connections/s", "A"): {
                '{cluster="eu", node="node-1"}': 2, '{cluster="eu", node="node-2"}': 2,
                '{cluster="us", node="node-3"}': 12},
            ("Connections by country, selected nodes", "A"): {
                '{country="US"}': 4.5, '{country="DE"}': 0.5, '{country="BR"}': 10},
        }
        eu = {
            ("Nodes reporting", "A"): {"{}": 2},
            ("Connections/s, fleet", "A"): {"{}": 4},
            (unique, "A"): {"{}": 3 + 1},
            (unique, "B"): {"{}": 3 + 1 + 1 + 2},
            (countries, "A"): {'{country="US"}': 3.5, '{country="DE"}': 0.5},
            ("Connections/s by port and service, fleet", "A"): {
                '{port="443", service="web"}': 3.5, '{port="22", service="sshd"}': 0.5},
            ("Nodes by connections/s", "A"): {
                '{cluster="eu", node="node-1"}': 2, '{cluster="eu", node="node-2"}': 2},
        }
        # The drill-down: one node on its map; the fleet overview stays the fleet.
        node_1 = {
            ("Connections by country, selected nodes", "A"): {
                '{country="US"}': 1.5, '{country="DE"}': 0.5},
            (countries, "A"): fleet[(countries, "A")],
            ("Nodes reporting", "A"): {"{}": 3},
            ("Nodes by connections/s", "A"): fleet[("Nodes by connections/s", "A")],
        }
        host = {
            ("Nodes reporting", "A"): {"{}": 1},
            ("Connections/s, fleet", "A"): {"{}": 1.5},
            (unique, "A"): {"{}": 3},
            (unique, "B"): {"{}": 3},
            (countries, "A"): {'{country="US"}': 1},
            ("Connections/s by port and service, fleet", "A"): {
                '{port="8081", service="python3"}': 1, '{port="22", service="sshd"}': 0.5},
            ("Nodes by connections/s", "A"): {"{}": 1.5},
            ("Connections by country, selected nodes", "A"): {'{country="US"}': 1},
        }
        fleet_row = panels_by_row(self.dashboard)["Fleet overview"]
        drill_row = panels_by_row(self.dashboard)["Per-node drill-down"]
        self.assertEqual({k for k in fleet},
                         {(p["title"], t["refId"]) for p in fleet_row + drill_row
                          for t in p["targets"]})
        tests = []
        for hosts, traffic, chosen, expected in (
                (FLEET_NODES, FLEET_TRAFFIC, {}, fleet),
                (FLEET_NODES, FLEET_TRAFFIC, {"$cluster": "eu"}, eu),
                (FLEET_NODES, FLEET_TRAFFIC, {"$node": "node-1"}, node_1),
                (HOST, HOST_TRAFFIC, {}, host)):
            values = dict(all_selected, **chosen)
            checks = [{"expr": substitute(queries[key], values), "eval_time": EVAL_TIME,
                       "exp_samples": [{"labels": labels, "value": value}
                                       for labels, value in samples.items()]}
                      for key, samples in expected.items()]
            failures = FLEET_FAILURES if hosts is FLEET_NODES else HOST_FAILURES
            tests.append({"interval": "1m",
                          "input_series": input_series(self.dashboard, hosts, traffic, failures),
                          "promql_expr_test": checks})
        self.run_unit_tests("fleet_panels_test.yml", tests)

    def test_traffic_and_failure_panels_show_exact_figures(self):
        """Bytes, lifetimes and failed connections, from PER_CONNECTION and
        the failures above: over the 5 minutes of $__range, per second over
        the 1 minute of $__rate_interval."""
        queries = {(title, ref): expr for title, ref, expr in panel_queries(self.dashboard)}
        self.assertLessEqual({(title, "A") for title in TRAFFIC_ROW}, set(queries))
        by_country = "Bytes by country"
        top = "Top countries by bytes"
        per_second = "Bytes/s by country, received and sent"
        per_port = "Bytes/s by port and service, received and sent"
        heatmap = "Connection lifetimes"
        quantiles = "Connection lifetime quantiles by port and service"
        mean = "Mean connection lifetime by country"
        failed = "Failed connections by country and reason"
        failed_per_second = "Failed connections/s by port and reason"
        # Each (port, service)'s connections all in one bucket: the median is
        # its middle, (1 + 10) / 2 for 443 and 80.
        fleet = {
            # US: 443 on three nodes (60 + 120 + 60 a minute, 3200 bytes
            # each) and 22 on node-1 (30, 150 bytes), over 5 minutes;
            # private is not on the map.
            (by_country, "A"): {'{country="US"}': (240 * 3200 + 30 * 150) * 5,
                                '{country="DE"}': 30 * 3200 * 5,
                                '{country="BR"}': 600 * 1100 * 5},
            (top, "A"): {'{country="US"}': (240 * 3200 + 30 * 150) * 5,
                         '{country="DE"}': 30 * 3200 * 5, '{country="BR"}': 600 * 1100 * 5},
            (per_second, "A"): {'{country="US"}': (240 * 200 + 30 * 50) / 60,
                                '{country="DE"}': 30 * 200 / 60, '{country="BR"}': 600 * 100 / 60,
                                '{country="private"}': 60 * 50 / 60},
            (per_second, "B"): {'{country="US"}': (240 * 3000 + 30 * 100) / 60,
                                '{country="DE"}': 30 * 3000 / 60,
                                '{country="BR"}': 600 * 1000 / 60,
                                '{country="private"}': 60 * 100 / 60},
            (per_port, "A"): {'{port="443", service="web"}': 270 * 200 / 60,
                              '{port="22", service="sshd"}': 90 * 50 / 60,
                              '{port="80", service="nginx"}': 600 * 100 / 60},
            (per_port, "B"): {'{port="443", service="web"}': 270 * 3000 / 60,
                              '{port="22", service="sshd"}': 90 * 100 / 60,
                              '{port="80", service="nginx"}': 600 * 1000 / 60},
            # Closed in the last minute, per bucket: 443 and 80 (270 + 600)
            # at 10 s and above, 22 (90) from 60 s.
            (heatmap, "A"): {'{le="%s"}' % le: count for le, count in (
                ("0.01", 0), ("0.1", 0), ("1", 0), ("10", 870), ("60", 960), ("600", 960),
                ("3600", 960), ("+Inf", 960))},
            (quantiles, "A"): {'{port="443", service="web"}': 5.5,
                               '{port="22", service="sshd"}': 35,
                               '{port="80", service="nginx"}': 5.5},
            (mean, "A"): {'{country="private"}': 30, '{country="US"}': 2100 * 5 / (270 * 5),
                          '{country="DE"}': 5, '{country="BR"}': 2},
            (failed, "A"): {'{country="CN", reason="refused"}': 180 * 5,
                            '{country="CN", reason="incomplete"}': 15 * 5,
                            '{country="RU", reason="refused"}': 30 * 5,
                            '{country="private", reason="refused"}': 15 * 5},
            (failed_per_second, "A"): {'{port="other", reason="refused"}': 195 / 60,
                                       '{port="443", reason="incomplete"}': 15 / 60,
                                       '{port="80", reason="refused"}': 30 / 60},
        }
        # One service: the traffic of sshd alone; failures have no service,
        # so they stay whole.
        sshd = {
            (by_country, "A"): {'{country="US"}': 30 * 150 * 5},
            (per_port, "A"): {'{port="22", service="sshd"}': 90 * 50 / 60},
            (quantiles, "A"): {'{port="22", service="sshd"}': 35},
            (mean, "A"): {'{country="private"}': 30, '{country="US"}': 30},
            (failed, "A"): fleet[(failed, "A")],
            (failed_per_second, "A"): fleet[(failed_per_second, "A")],
        }
        # One port: its failures; "other" is not a port one can pick.
        port_443 = {
            (by_country, "A"): {'{country="US"}': 240 * 3200 * 5, '{country="DE"}': 30 * 3200 * 5},
            (failed, "A"): {'{country="CN", reason="incomplete"}': 15 * 5},
            (failed_per_second, "A"): {'{port="443", reason="incomplete"}': 15 / 60},
        }
        node_3 = {
            (top, "A"): {'{country="US"}': 60 * 3200 * 5, '{country="BR"}': 600 * 1100 * 5},
            (quantiles, "A"): {'{port="443", service="web"}': 5.5,
                               '{port="22", service="sshd"}': 35,
                               '{port="80", service="nginx"}': 5.5},
            (failed, "A"): {'{country="RU", reason="refused"}': 30 * 5,
                            '{country="private", reason="refused"}': 15 * 5},
        }
        host = {
            (by_country, "A"): {'{country="US"}': 60 * 900 * 5},
            (per_second, "A"): {'{country="US"}': 60 * 300 / 60, '{country="private"}': 30 * 50 / 60},
            (per_second, "B"): {'{country="US"}': 60 * 600 / 60, '{country="private"}': 30 * 100 / 60},
            (heatmap, "A"): {'{le="%s"}' % le: count for le, count in (
                ("0.01", 0), ("0.1", 0), ("1", 0), ("10", 0), ("60", 30), ("600", 90),
                ("3600", 90), ("+Inf", 90))},
            (quantiles, "A"): {'{port="8081", service="python3"}': 330,
                               '{port="22", service="sshd"}': 35},
            (mean, "A"): {'{country="US"}': 300, '{country="private"}': 30},
            (failed, "A"): {'{country="NL", reason="refused"}': 15 * 5,
                            '{country="US", reason="incomplete"}': 30 * 5},
            (failed_per_second, "A"): {'{port="other", reason="refused"}': 15 / 60,
                                       '{port="8081", reason="incomplete"}': 30 / 60},
        }
        tests = []
        for hosts, traffic, failures, chosen, expected in (
                (FLEET_NODES, FLEET_TRAFFIC, FLEET_FAILURES, {}, fleet),
                (FLEET_NODES, FLEET_TRAFFIC, FLEET_FAILURES, {"$service": "sshd"}, sshd),
                (FLEET_NODES, FLEET_TRAFFIC, FLEET_FAILURES, {"$port": "443"}, port_443),
                (FLEET_NODES, FLEET_TRAFFIC, FLEET_FAILURES, {"$node": "node-3"}, node_3),
                (HOST, HOST_TRAFFIC, HOST_FAILURES, {}, host)):
            values = dict(all_values(self.dashboard), **chosen)
            checks = [{"expr": substitute(queries[key], values), "eval_time": EVAL_TIME,
                       "exp_samples": [{"labels": labels, "value": value}
                                       for labels, value in samples.items()]}
                      for key, samples in expected.items()]
            tests.append({"interval": "1m",
                          "input_series": input_series(self.dashboard, hosts, traffic, failures),
                          "promql_expr_test": checks})
        self.run_unit_tests("traffic_panels_test.yml", tests)


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
