"""Portfolio rebalancing for Indian equity model portfolios.

The pure core (portfolio, policy, schedule, calendar, planning, costs, schemas) imports no Airflow,
broker client or database driver; adapters (brokers, history) and the Airflow glue (tasks,
timetable) sit around it.
"""

__version__ = "0.1.0"
