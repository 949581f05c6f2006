// Virtual Machine Contributor on the scale sets' resource group (deployed there; never the subscription):
// read scale sets, their VMs and instance views, start and deallocate.
// https://learn.microsoft.com/azure/role-based-access-control/built-in-roles/compute#virtual-machine-contributor
param principalId string

resource vmContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceGroup().id, principalId, '9980e02c-c2be-4d73-94e8-173b1dc7cf3c')
  scope: resourceGroup()
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '9980e02c-c2be-4d73-94e8-173b1dc7cf3c')
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}
