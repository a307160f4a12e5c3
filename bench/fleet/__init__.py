"""A fleet of simulated stores on one machine, for the soak and chaos runs (issue 9).

Each store has an edge "box" process that publishes arrivals through the product's own outbox and
publisher (``bench.fleet.edge_sim``), a guide-screen client applying the kiosk's display rules
(``bench.fleet.screen``), and a TCP link to the broker that can be cut (``bench.fleet.proxy``);
the cloud is several ``instore cloud serve`` processes on a fresh PostgreSQL database
(``bench.fleet.cloud``) behind one Mosquitto (``bench.fleet.broker``). ``bench.fleet.fleet``
composes them and ``bench.fleet.verify`` checks the invariants afterwards.
"""
