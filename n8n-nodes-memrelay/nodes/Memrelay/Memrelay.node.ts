import { NodeConnectionTypes, type INodeType, type INodeTypeDescription } from 'n8n-workflow';
import { collectionFields, collectionOperations } from './resources/collection';
import { generationFields, generationOperations } from './resources/generation';
import { governanceFields, governanceOperations } from './resources/governance';
import { memoryFields, memoryOperations } from './resources/memory';
import { recordFields, recordOperations } from './resources/record';
import { BASE_URL } from './shared/descriptions';
import { getAgents, getEntityTypes, getGuidelines, getProperties } from './shared/loadOptions';

export class Memrelay implements INodeType {
	description: INodeTypeDescription = {
		displayName: 'memrelay',
		name: 'memrelay',
		icon: { light: 'file:../../icons/memrelay.svg', dark: 'file:../../icons/memrelay.dark.svg' },
		group: ['transform'],
		version: 1,
		subtitle: '={{$parameter["operation"] + ": " + $parameter["resource"]}}',
		description: 'Records, memory, recall, governance and generation in memrelay',
		defaults: {
			name: 'memrelay',
		},
		usableAsTool: true,
		inputs: [NodeConnectionTypes.Main],
		outputs: [NodeConnectionTypes.Main],
		credentials: [{ name: 'memrelayApi', required: true }],
		requestDefaults: {
			baseURL: BASE_URL,
			headers: { Accept: 'application/json', 'Content-Type': 'application/json' },
			json: true,
			ignoreHttpStatusErrors: true,
		},
		properties: [
			{
				displayName: 'Resource',
				name: 'resource',
				type: 'options',
				noDataExpression: true,
				options: [
					{ name: 'Collection', value: 'collection' },
					{ name: 'Generation', value: 'generation' },
					{ name: 'Governance', value: 'governance' },
					{ name: 'Memory', value: 'memory' },
					{ name: 'Record', value: 'record' },
				],
				default: 'record',
			},
			recordOperations,
			memoryOperations,
			governanceOperations,
			generationOperations,
			collectionOperations,
			...recordFields,
			...memoryFields,
			...governanceFields,
			...generationFields,
			...collectionFields,
		],
	};

	methods = {
		loadOptions: {
			getAgents,
			getEntityTypes,
			getGuidelines,
			getProperties,
		},
	};
}
