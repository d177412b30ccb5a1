-- Create the database of MLflow's backend store, unless it exists (what
-- `mlflow-pairs db create` does). Run with psql, which executes the generated statement:
--   psql -h localhost -U postgres -d postgres -f scripts/create_mlflow_db.sql
SELECT 'CREATE DATABASE mlflow_db'
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'mlflow_db')\gexec
