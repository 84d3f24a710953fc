-- Which step a result is of, across runs (bot/run_clock.step_identity: run kind, scenario,
-- step name and command as written), so a running step can say how long it took last time.
-- Null for results recorded before this migration: they have no history.
alter table step_results add column identity text;

-- The last successful result of each step: one index probe per step at a run's start.
create index step_results_last_success on step_results (identity, id desc)
    where status = 'succeeded' and identity is not null;
