// batchk8s on Azure: a Flex Consumption Function app with a user-assigned identity, its storage,
// monitoring, the role assignments it needs and no more, and optionally a Batch account.
// Deployed by `azd up` (azure.yaml); every parameter is typed and constrained so a wrong value fails
// at preflight, before anything is created. docs/deploy.md lists them with what each costs.
targetScope = 'subscription'

@minLength(1)
@maxLength(40)
@description('azd environment name; names and tags every resource.')
param environmentName string

@minLength(1)
@description('Region for every resource (must offer Flex Consumption).')
param location string

@allowed([512, 2048, 4096])
@description('Memory per instance in MB (Flex Consumption sizes).')
param instanceMemoryMB int = 2048

@minValue(40)
@maxValue(1000)
@description('Most instances the app scales out to.')
param maximumInstanceCount int = 40

@allowed(['Standard_LRS', 'Standard_ZRS', 'Standard_GRS', 'Standard_RAGRS'])
@description('Redundancy of the storage account (host, artifacts, schedule state).')
param storageSku string = 'Standard_LRS'

@minValue(30)
@maxValue(730)
@description('Days Log Analytics keeps the app logs.')
param logRetentionDays int = 30

@maxLength(90)
@description('Resource group of the scale sets the app starts and deallocates; empty: no scale-set timer and no role.')
param vmssResourceGroup string = ''

@maxLength(1000)
@description('Scale set names in that group, comma-separated (AZURE_VMSS_NAME).')
param vmssNames string = ''

@allowed(['start', 'deallocate'])
@description('What the scale-set timer does (AZURE_VMSS_ACTION).')
param vmssAction string = 'deallocate'

@minLength(11)
@description('NCRONTAB of the scale-set timer, six fields, UTC on Flex Consumption (VmssTriggerSchedule).')
param vmssSchedule string = '0 0 19 * * Mon-Fri'

@description('Create a Batch account for the Kubernetes pools (else use existingBatchAccountId, or none).')
param createBatchAccount bool = false

@allowed(['BatchService', 'UserSubscription'])
@description('Pool allocation mode of a created Batch account; UserSubscription needs batchKeyVaultId.')
param batchPoolAllocationMode string = 'BatchService'

@description('Key Vault resource id for a UserSubscription-mode Batch account.')
param batchKeyVaultId string = ''

@description('Resource id of an existing Batch account the app acts on (when createBatchAccount is false).')
param existingBatchAccountId string = ''

@description('With the Batch feature: a user-assigned identity for the pool nodes (blob access without SAS); false: nodes get SAS URLs.')
param batchPoolIdentity bool = true

@description('Shared Image Gallery image (version) resource id for the pool; empty: marketplace Ubuntu LTS.')
param batchVmImageId string = ''

@minLength(3)
@maxLength(64)
@description('Batch pool id (AZURE_BATCH_POOL_ID).')
param batchPoolId string = 'k8s-pool'

@minLength(8)
@description('Batch node VM size (AZURE_BATCH_VM_SIZE).')
param batchVmSize string = 'STANDARD_D2_V3'

@minValue(0)
@maxValue(1000)
@description('Dedicated Batch nodes (AZURE_BATCH_VM_NODE_COUNT).')
param batchNodeCount int = 1

@description('Schedule document JSON (BATCHK8S_SCHEDULES); with schedulesBlob empty too, the reconcile timer is disabled.')
param schedulesDocument string = ''

@maxLength(1088)
@description('Schedule document as CONTAINER/BLOB in the app storage (BATCHK8S_SCHEDULES_BLOB).')
param schedulesBlob string = ''

var tags = { 'azd-env-name': environmentName, app: 'batchk8s' }
var token = toLower(uniqueString(subscription().id, environmentName, location))
var vmssEnabled = !empty(vmssResourceGroup) && !empty(vmssNames)
var batchEnabled = createBatchAccount || !empty(existingBatchAccountId)
var poolIdentityEnabled = batchEnabled && batchPoolIdentity
var schedulesEnabled = !empty(schedulesDocument) || !empty(schedulesBlob)

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: { name: 'id-batchk8s-${token}', location: location, tags: tags }
}

// The pool nodes' own identity, never the app's: anything on a node can get its tokens.
module poolIdentity 'modules/identity.bicep' = if (poolIdentityEnabled) {
  name: 'identity-pool'
  scope: rg
  params: { name: 'id-batchk8s-nodes-${token}', location: location, tags: tags }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: { token: token, location: location, tags: tags, retentionDays: logRetentionDays }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: { name: 'st${token}', location: location, tags: tags, sku: storageSku }
}

module batch 'modules/batch.bicep' = if (createBatchAccount) {
  name: 'batch'
  scope: rg
  params: {
    name: batchAccountName
    location: location
    tags: tags
    poolAllocationMode: batchPoolAllocationMode
    keyVaultId: batchKeyVaultId
  }
}

// -- role assignments: each module holds one scope's, with the built-in role's doc beside it --

module storageRoles 'modules/roles/storage.bicep' = {
  name: 'roles-storage'
  scope: rg
  params: { storageAccountName: storage.outputs.name, principalId: identity.outputs.principalId }
}

module monitoringRoles 'modules/roles/monitoring.bicep' = {
  name: 'roles-monitoring'
  scope: rg
  params: { appInsightsName: monitoring.outputs.appInsightsName, principalId: identity.outputs.principalId }
}

module scaleSetRoles 'modules/roles/scalesets.bicep' = if (vmssEnabled) {
  name: 'roles-scalesets'
  scope: resourceGroup(vmssEnabled ? vmssResourceGroup : rg.name)
  params: { principalId: identity.outputs.principalId }
}

var batchAccountName = 'ba${take(token, 20)}'
var createdBatchAccountId = '${rg.id}/providers/Microsoft.Batch/batchAccounts/${batchAccountName}'
var batchAccountId = createBatchAccount ? createdBatchAccountId : existingBatchAccountId
var batchIdParts = split(batchEnabled ? batchAccountId : '/subscriptions/-/resourceGroups/-/providers/-/-/-', '/')

module batchRoles 'modules/roles/batch.bicep' = if (batchEnabled) {
  name: 'roles-batch'
  scope: resourceGroup(batchIdParts[2], batchIdParts[4])
  params: { batchAccountName: last(batchIdParts), principalId: identity.outputs.principalId }
  dependsOn: [batch]
}

// The nodes read the artifact containers and write the cluster containers; the app may assign the identity.
module nodeRoles 'modules/roles/nodes.bicep' = if (poolIdentityEnabled) {
  name: 'roles-nodes'
  scope: rg
  params: { storageAccountName: storage.outputs.name, principalId: poolIdentityEnabled ? poolIdentity.outputs.principalId : '', readContainers: nodeReadContainers }
}

module poolIdentityRoles 'modules/roles/poolidentity.bicep' = if (poolIdentityEnabled) {
  name: 'roles-pool-identity'
  scope: rg
  params: { identityName: poolIdentityEnabled ? poolIdentity.outputs.name : '', principalId: identity.outputs.principalId }
}

// What nodes read: the node scripts, the Kubernetes manifests and the TES task documents.
var nodeReadContainers = [baseSettings.AZURE_STORAGE_APP_DIRECTORY, baseSettings.AZURE_STORAGE_K8S_DIRECTORY, baseSettings.AZURE_STORAGE_TESK_DIRECTORY]

var imageIdParts = split(empty(batchVmImageId) ? '/subscriptions/-/resourceGroups/-/providers/-/-/-/-/-' : batchVmImageId, '/')

module imageRoles 'modules/roles/image.bicep' = if (!empty(batchVmImageId)) {
  name: 'roles-image'
  scope: resourceGroup(imageIdParts[2], imageIdParts[4])
  params: { galleryName: imageIdParts[8], imageName: imageIdParts[10], principalId: identity.outputs.principalId }
}

// -- the app and the settings batchk8s reads (names from batchk8s/settings.py; no secret among them) --

var baseSettings = {
  AZURE_SUBSCRIPTION_ID: subscription().subscriptionId
  AZURE_STORAGE_APP_DIRECTORY: 'apps'
  AZURE_STORAGE_K8S_DIRECTORY: 'k8sresources'
  AZURE_STORAGE_TESK_DIRECTORY: 'tesk-tasks'
  BATCHK8S_STATE_CONTAINER: 'batchk8s-state'
  // The host resolves %VmssTriggerSchedule% even for a disabled timer, so it is always set.
  VmssTriggerSchedule: vmssSchedule
  // Timers the deployment does not use are switched off the host's way, not by an empty schedule.
  'AzureWebJobs.vmss_schedule.Disabled': vmssEnabled ? 'false' : 'true'
  'AzureWebJobs.schedules_reconcile.Disabled': schedulesEnabled ? 'false' : 'true'
}
var vmssSettings = {
  AZURE_RES_GROUP_NAME: vmssResourceGroup
  AZURE_VMSS_NAME: vmssNames
  AZURE_VMSS_ACTION: vmssAction
}
var batchSettings = {
  AZURE_BATCH_ACCOUNT_NAME: last(batchIdParts)
  AZURE_BATCH_ACCOUNT_URL: batchEnabled ? batchRoles.outputs.endpoint : ''
  AZURE_BATCH_POOL_ID: batchPoolId
  AZURE_BATCH_VM_SIZE: batchVmSize
  AZURE_BATCH_VM_NODE_COUNT: string(batchNodeCount)
}
// Pools get the nodes' identity through the management plane, in the Batch account's group.
var poolIdentitySettings = {
  AZURE_BATCH_POOL_IDENTITY_ID: poolIdentityEnabled ? poolIdentity.outputs.id : ''
  AZURE_BATCH_POOL_IDENTITY_CLIENT_ID: poolIdentityEnabled ? poolIdentity.outputs.clientId : ''
  AZURE_BATCH_RES_GROUP_NAME: batchIdParts[4]
}
var imageSettings = { AZURE_BATCH_VM_IMAGE_ID: batchVmImageId }
var scheduleSettings = union(empty(schedulesDocument) ? {} : { BATCHK8S_SCHEDULES: schedulesDocument }, empty(schedulesBlob) ? {} : { BATCHK8S_SCHEDULES_BLOB: schedulesBlob })
var appSettings = union(baseSettings, vmssEnabled ? vmssSettings : {}, batchEnabled ? batchSettings : {}, poolIdentityEnabled ? poolIdentitySettings : {}, empty(batchVmImageId) ? {} : imageSettings, schedulesEnabled ? scheduleSettings : {})

module app 'modules/app.bicep' = {
  name: 'app'
  scope: rg
  params: {
    name: 'func-batchk8s-${token}'
    location: location
    tags: union(tags, { 'azd-service-name': 'api' })
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    blobEndpoint: storage.outputs.blobEndpoint
    deploymentContainer: storage.outputs.deploymentContainer
    appInsightsConnectionString: monitoring.outputs.connectionString
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    appSettings: appSettings
  }
  dependsOn: [storageRoles, monitoringRoles, nodeRoles, poolIdentityRoles]
}

output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = app.outputs.name
output APP_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output AZURE_STORAGE_ACCOUNT string = storage.outputs.name
output POOL_IDENTITY_CLIENT_ID string = poolIdentityEnabled ? poolIdentity.outputs.clientId : ''
