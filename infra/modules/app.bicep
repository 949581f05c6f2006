// The Function app on Flex Consumption (Linux, Python 3.11). The runtime, the deployment container
// and scaling live in functionAppConfig; Flex refuses FUNCTIONS_WORKER_RUNTIME and
// FUNCTIONS_EXTENSION_VERSION as app settings. Host storage is identity-based: no connection string.
@minLength(2)
@maxLength(60)
param name string
param location string
param tags object
param identityId string
param identityClientId string
param storageAccountName string
param blobEndpoint string
param deploymentContainer string
param appInsightsConnectionString string

@allowed([512, 2048, 4096])
param instanceMemoryMB int

@minValue(40)
@maxValue(1000)
param maximumInstanceCount int

@description('The batchk8s settings (names from batchk8s/settings.py); merged with the host settings below.')
param appSettings object

// What the host itself reads: identity-based storage and telemetry sent with the identity.
var hostSettings = {
  AzureWebJobsStorage__accountName: storageAccountName
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
  AZURE_CLIENT_ID: identityClientId
}

var allSettings = union(appSettings, hostSettings)

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: zone redundancy is a cost choice for an app of timers and short calls; a zone outage delays a timer, the next firing catches up
  name: 'plan-${name}'
  location: location
  tags: tags
  kind: 'functionapp'
  sku: { tier: 'FlexConsumption', name: 'FC1' }
  properties: { reserved: true }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222: the HTTP functions serve pipelines over the internet, each route behind a function key; private access needs a VNet this template does not assume
  // checkov:skip=CKV_AZURE_17: callers authenticate with function keys; requiring client certificates would break every pipeline caller
  // checkov:skip=CKV_AZURE_212: Flex Consumption scales from zero on demand; always-ready instances would bill around the clock for timers
  // checkov:skip=CKV_AZURE_213: Flex Consumption instances are platform-managed and scale to zero; probe GET /api/health from an availability test instead
  name: name
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${identityId}': {} }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      appSettings: [for setting in items(allSettings): { name: setting.key, value: setting.value }]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${blobEndpoint}${deploymentContainer}'
          authentication: { type: 'UserAssignedIdentity', userAssignedIdentityResourceId: identityId }
        }
      }
      scaleAndConcurrency: { instanceMemoryMB: instanceMemoryMB, maximumInstanceCount: maximumInstanceCount }
      runtime: { name: 'python', version: '3.11' }
    }
  }
}

output name string = site.name
