-- readable by: 10
-- A delivery's planning looks for newer unplanned deliveries of its
-- repository (store.Unplanned). Without this index that is a walk over
-- every queued delivery, which a burst makes many thousands: each issue's
-- planning then cost more than storing a delivery.
CREATE INDEX hw_deliveries_repo ON hw_deliveries (repo, id);
