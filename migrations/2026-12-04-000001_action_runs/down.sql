drop table action_runs;
