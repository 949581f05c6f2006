"""The Azure Functions app: create it and register each area's blueprint; the logic lives in batchk8s."""

import azure.functions as func

from batchk8s.functions import artifacts, health, openapi, pools, schedules, tes, tes_gateway, vmss, workflows

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

for blueprint in (health.bp, openapi.bp, artifacts.bp, vmss.bp, schedules.bp, pools.bp, workflows.bp, tes.bp,
                  tes_gateway.bp):
    app.register_functions(blueprint)
